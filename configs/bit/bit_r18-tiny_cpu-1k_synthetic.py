# BIT on the synthetic dataset, sized for a CPU ("bit_r18-tiny"): ResNetV1c-18 at 1/4 width
# (stem 16, stages 16/32/64 channels -> 64 channels at 1/8) and a BIT head with C=16 tokens
# (4 heads, MLP width 32); token_len 4, 1 encoder / 8 decoder layers as in BIT.
# Semantic features: (N, 64, H/8, W/8) per date; change feature: (N, 16, H, W).
# The full-width model is configs/_base_/models/bit_r18.py (9.2 GMACs per 256^2 pair).
_base_ = [
    '../_base_/models/bit_r18.py', '../_base_/datasets/synthetic_cd.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_cpu_1k.py'
]
model = dict(
    backbone=dict(stem_channels=16, base_channels=16),
    decode_head=dict(in_channels=64, channels=16, embed_dims=32, num_heads=4))
# Shorter than the shared 1000 iterations so that a run fits ~20-25 min on the shared 2-core
# CPU (see docs/detectors.md for the measured time); the poly decay ends with the run.
max_iters = 400
train_cfg = dict(max_iters=max_iters, val_interval=max_iters // 2)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', power=1.0, begin=50, end=max_iters, eta_min=0.0, by_epoch=False),
]
default_hooks = dict(checkpoint=dict(interval=max_iters // 2))
