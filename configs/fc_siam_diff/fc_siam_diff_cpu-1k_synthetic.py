# FC-Siam-diff on the synthetic dataset, sized for a CPU: 1000 iterations of batch 8 at 256^2.
_base_ = [
    '../_base_/models/fc_siam_diff.py', '../_base_/datasets/synthetic_cd.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_cpu_1k.py'
]
