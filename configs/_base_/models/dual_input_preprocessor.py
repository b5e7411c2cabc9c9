# The data preprocessor shared by every bi-temporal detector: a pair stacked as 6 channels
# (12 with the HQ copy of a HiCD batch), ImageNet mean/std per image, BGR -> RGB, padded to a
# multiple of 32 (labels padded with the ignore index 255).
data_preprocessor = dict(
    type='DualInputSegDataPreProcessor',
    mean=[123.675, 116.28, 103.53] * 2,
    std=[58.395, 57.12, 57.375] * 2,
    bgr_to_rgb=True,
    size_divisor=32,
    pad_val=0,
    seg_pad_val=255,
    test_cfg=dict(size_divisor=32))
