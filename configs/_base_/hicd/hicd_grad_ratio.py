# HiCD defaults plus the diagnostic DistillGradientRatioHook: every 50 iterations the student
# gradient norms of task and distillation, their ratio and cosine are logged (two extra backward
# passes in those iterations; keep it out of speed benchmarks).
_base_ = ['./hicd_default.py']
custom_hooks = [
    dict(type='StudentCheckpointHook', interval=-1),
    dict(type='DistillGradientRatioHook', interval=50),
]
