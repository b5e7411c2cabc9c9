# Single degradation: JPEG compression. Training: severity 1-5 (quality 60..8) drawn per
# iteration; test: severity 3 (quality 25). Usage: see resolution_x4.py.
train_degradation = dict(
    type='hicd_mm.DegradeImage', degradation='jpeg', severity=[1, 2, 3, 4, 5], keep_hq=True)
test_degradation = dict(
    type='hicd_mm.DegradeImage', degradation='jpeg', severity=3, keep_hq=False, seed=0)
# LQ baseline (no teacher): the same training degradation without the HQ copy.
lq_train_degradation = dict(train_degradation, keep_hq=False)
