# SNUNet-CD/16 (Fang et al., "SNUNet-CD: A Densely Connected Siamese Network for Change
# Detection of VHR Images", GRSL 2022): shared 5-level UNet++ encoder (SNUNetEncoder),
# FeatureFusionNeck concat, nested dense decoder + ECAM (SNUNetECAMHead).
# Semantic features: output of `backbone` = one tuple per date with 5 maps
#   (N, 16, H, W), (N, 32, H/2, W/2), (N, 64, H/4, W/4), (N, 128, H/8, W/8), (N, 256, H/16, W/16).
# Change feature: input of `decode_head.conv_seg` = (N, 64, H, W) (ECAM output, 4 x 16).
_base_ = ['./dual_input_preprocessor.py', './change_losses.py']
norm_cfg = dict(type='BN', requires_grad=True)  # BN, not SyncBN (CPU / single-device runs)
model = dict(
    type='SiamEncoderDecoder',
    data_preprocessor={{_base_.data_preprocessor}},
    pretrained=None,  # SNUNet-CD is trained from scratch (no ImageNet weights exist)
    backbone=dict(type='SNUNetEncoder', in_channels=3, base_channels=16,
                  num_stages=5, norm_cfg=norm_cfg),
    neck=dict(type='FeatureFusionNeck', policy='concat'),
    decode_head=dict(
        type='SNUNetECAMHead',
        in_channels=[32, 64, 128, 256, 512],  # 2 x encoder widths (t1 | t2)
        channels=64,  # 4 x base_channels (ECAM ensemble width)
        intra_ratio=4,
        inter_ratio=16,
        num_classes=2,
        dropout_ratio=0.0,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode={{_base_.loss_decode}}),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
