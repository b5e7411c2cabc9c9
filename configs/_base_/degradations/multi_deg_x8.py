# Multi-degradation x8 (BANDON "Multi-Deg-Diff-x8"): BSRGAN-style pipeline at scale factor 8.
# Usage: see resolution_x4.py.
train_degradation = dict(type='hicd_mm.DegradeImage', degradation='multi', scale=8, keep_hq=True)
test_degradation = dict(
    type='hicd_mm.DegradeImage', degradation='multi', scale=8, keep_hq=False, seed=0)
# LQ baseline (no teacher): the same training degradation without the HQ copy.
lq_train_degradation = dict(train_degradation, keep_hq=False)
