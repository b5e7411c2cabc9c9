# ChangeFormer (Bandara & Patel, "A Transformer-Based Siamese Network for Change Detection",
# IGARSS 2022): shared MiT-b0 (mmseg MixVisionTransformer), FeatureFusionNeck concat,
# difference modules at the 4 scales + MLP decoder upsampled to full resolution
# (ChangeFormerHead). Loss: CE (class weights 1:2) + Dice.
# Semantic features: output of `backbone` = one tuple per date with 4 maps
#   (N, 32, H/4, W/4), (N, 64, H/8, W/8), (N, 160, H/16, W/16), (N, 256, H/32, W/32).
# Change feature: input of `decode_head.conv_seg` = (N, 256, H, W) (final_upsample=4).
_base_ = ['./dual_input_preprocessor.py', './change_losses.py']
norm_cfg = dict(type='BN', requires_grad=True)  # BN, not SyncBN (CPU / single-device runs)
model = dict(
    type='SiamEncoderDecoder',
    data_preprocessor={{_base_.data_preprocessor}},
    # No weights can be downloaded here. With network access, ImageNet MiT-b0 weights are
    # enabled by pretrained='https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/'
    # 'segformer/mit_b0_20220624-7e0fe6dd.pth' (as in Open-CD) or a local path.
    pretrained=None,
    backbone=dict(
        type='mmseg.MixVisionTransformer',
        in_channels=3,
        embed_dims=32,
        num_stages=4,
        num_layers=[2, 2, 2, 2],
        num_heads=[1, 2, 5, 8],
        patch_sizes=[7, 3, 3, 3],
        sr_ratios=[8, 4, 2, 1],
        out_indices=(0, 1, 2, 3),
        mlp_ratio=4,
        qkv_bias=True,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.1),
    neck=dict(type='FeatureFusionNeck', policy='concat'),
    decode_head=dict(
        type='ChangeFormerHead',
        in_channels=[64, 128, 320, 512],  # 2 x MiT-b0 widths (t1 | t2)
        channels=256,
        final_upsample=4,
        num_classes=2,
        dropout_ratio=0.1,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode={{_base_.loss_decode}}),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
