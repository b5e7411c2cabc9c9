# Multi-degradation x4 (LEVIR-CD "Multi-Deg-Diff-x4"): BSRGAN-style shuffled blur, downsampling,
# noise and JPEG at scale factor 4, then back to full size. Training draws fresh parameters
# every iteration; the test set is fixed by the seed. Usage: see resolution_x4.py.
train_degradation = dict(type='hicd_mm.DegradeImage', degradation='multi', scale=4, keep_hq=True)
test_degradation = dict(
    type='hicd_mm.DegradeImage', degradation='multi', scale=4, keep_hq=False, seed=0)
# LQ baseline (no teacher): the same training degradation without the HQ copy.
lq_train_degradation = dict(train_degradation, keep_hq=False)
