# FC-Siam-diff (Daudt et al., ICIP 2018): shared U-Net encoder, decoder over |f_t1 - f_t2|.
_base_ = ['./dual_input_preprocessor.py', './change_losses.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='SiamEncoderDecoder',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='FCSiamEncoder', in_channels=3, base_channels=16,
                  num_convs=(2, 2, 3, 3), norm_cfg=norm_cfg),
    neck=dict(type='FeatureFusionNeck', policy='abs_diff'),
    decode_head=dict(
        type='FCSiamDiffHead',
        in_channels=[16, 32, 64, 128],
        channels=16,
        num_classes=2,
        dropout_ratio=0.0,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode={{_base_.loss_decode}}),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
