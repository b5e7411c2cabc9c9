# bit_r18-tiny with an mmpretrain backbone: any mmpretrain backbone can be named with the
# `mmpretrain.` scope prefix once mmpretrain is installed (MMEngine imports mmpretrain's
# registry on first use; no custom_imports needed). Without mmpretrain, building the model
# fails with "KeyError: 'mmpretrain.ResNet is not in the hicd_mm::model registry ...'".
# ImageNet weights (network access needed), e.g. for the full width (stem/base 64,
# decode_head.in_channels=256):
#   init_cfg=dict(type='Pretrained', prefix='backbone.', checkpoint='https://download.'
#       'openmmlab.com/mmclassification/v0/resnet/resnet18_8xb32_in1k_20210831-fbbb1da6.pth')
_base_ = ['./bit_r18-tiny_cpu-1k_synthetic.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.ResNet',
        depth=18,
        stem_channels=16,
        base_channels=16,
        num_stages=3,
        strides=(1, 2, 1),
        dilations=(1, 1, 1),
        out_indices=(2, ),
        style='pytorch',
        norm_cfg=dict(type='BN', requires_grad=True)))
