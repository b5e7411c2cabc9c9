# Single degradation, noise family: Gaussian (read) or Poisson (shot) noise per sample.
# Training: kind and severity 1-5 drawn per iteration; test: severity 3, kind from the seed.
# Usage: see resolution_x4.py.
degradation_names = ['gaussian_noise', 'poisson_noise']
train_degradation = dict(
    type='hicd_mm.DegradeImage', degradation=degradation_names, severity=[1, 2, 3, 4, 5],
    keep_hq=True)
test_degradation = dict(
    type='hicd_mm.DegradeImage', degradation=degradation_names, severity=3, keep_hq=False, seed=0)
# LQ baseline (no teacher): the same training degradation without the HQ copy.
lq_train_degradation = dict(train_degradation, keep_hq=False)
