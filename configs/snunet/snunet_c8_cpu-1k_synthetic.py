# SNUNet-CD on the synthetic dataset, sized for a CPU: SNUNet-CD/8 (encoder widths
# 8/16/32/64/128 at strides 1..16; ECAM ensemble width 32).
# Semantic features: (N, 8|16|32|64|128, H/1..H/16) per date; change feature: (N, 32, H, W).
# The paper's SNUNet-CD/16 is configs/_base_/models/snunet_c16.py.
_base_ = [
    '../_base_/models/snunet_c16.py', '../_base_/datasets/synthetic_cd.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_cpu_1k.py'
]
model = dict(
    backbone=dict(base_channels=8),
    decode_head=dict(in_channels=[16, 32, 64, 128, 256], channels=32))
