# Single degradation, blur family: one of isotropic Gaussian, anisotropic Gaussian and motion
# blur per sample. Training: kind and severity 1-5 drawn per iteration; test: kind drawn per
# sample from the seed, severity 3. Usage: see resolution_x4.py.
degradation_names = ['gaussian_blur', 'anisotropic_blur', 'motion_blur']
train_degradation = dict(
    type='hicd_mm.DegradeImage', degradation=degradation_names, severity=[1, 2, 3, 4, 5],
    keep_hq=True)
test_degradation = dict(
    type='hicd_mm.DegradeImage', degradation=degradation_names, severity=3, keep_hq=False, seed=0)
# LQ baseline (no teacher): the same training degradation without the HQ copy.
lq_train_degradation = dict(train_degradation, keep_hq=False)
