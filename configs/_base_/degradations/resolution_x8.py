# Resolution difference x8 (BANDON "Resolution-Diff"): image B is downsampled by 8 (bicubic)
# and resampled back to full size. Usage as in resolution_x4.py / docs/degradations.md.
# A random factor per training sample is available with scale=(4, 8) (size ratio 1/8-1/4).
train_degradation = dict(
    type='hicd_mm.DegradeImage', degradation='resolution', scale=8, kernel='bicubic', keep_hq=True)
test_degradation = dict(
    type='hicd_mm.DegradeImage', degradation='resolution', scale=8, kernel='bicubic', keep_hq=False,
    seed=0)
# LQ baseline (no teacher): the same training degradation without the HQ copy.
lq_train_degradation = dict(train_degradation, keep_hq=False)
