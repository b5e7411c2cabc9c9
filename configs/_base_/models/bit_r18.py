# BIT (Chen et al., "Remote Sensing Image Change Detection with Transformers", TGRS 2022):
# shared ResNet-18 (mmseg ResNetV1c, stage 4 removed, stage 3 with stride 1 -> 256 channels at
# 1/8), FeatureFusionNeck concat, bitemporal image transformer head (BITHead).
# Semantic features: output of `backbone` = one tuple per date with 1 map (N, 256, H/8, W/8).
# Change feature: input of `decode_head.conv_seg` = (N, 32, H, W).
_base_ = ['./dual_input_preprocessor.py', './change_losses.py']
norm_cfg = dict(type='BN', requires_grad=True)  # BN, not SyncBN (CPU / single-device runs)
model = dict(
    type='SiamEncoderDecoder',
    data_preprocessor={{_base_.data_preprocessor}},
    # No weights can be downloaded here. With network access, ImageNet weights are enabled by
    # pretrained='open-mmlab://resnet18_v1c' (as in Open-CD) or by
    # backbone.init_cfg=dict(type='Pretrained', checkpoint='PATH/resnet18_v1c.pth').
    pretrained=None,
    backbone=dict(
        type='mmseg.ResNetV1c',
        depth=18,
        num_stages=3,
        out_indices=(2, ),
        dilations=(1, 1, 1),
        strides=(1, 2, 1),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True),
    neck=dict(type='FeatureFusionNeck', policy='concat', out_indices=(0, )),
    decode_head=dict(
        type='BITHead',
        in_channels=256,
        channels=32,
        embed_dims=64,
        enc_depth=1,
        enc_with_pos=True,
        dec_depth=8,
        num_heads=8,
        drop_rate=0.0,
        token_len=4,
        pre_upsample=2,
        upsample_size=4,
        num_classes=2,
        dropout_ratio=0.0,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode={{_base_.loss_decode}}),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
