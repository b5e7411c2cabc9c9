# Resolution difference x4 (LEVIR-CD / SV-CD "Resolution-Diff"): image B is downsampled by 4
# (bicubic) and resampled back to full size (bicubic), so the pair stays aligned.
# Use: put `train_degradation` in the train pipeline AFTER the geometric/photometric
# augmentation, right before the packing step, and wrap that packing step in
# hicd_mm.PackHQPair (keep_hq=True: the teacher gets the HQ pair as inputs_hq); put
# `test_degradation` right before the packing step of the val/test pipelines (fixed seed, no HQ
# copy). The configs in configs/hicd/ and configs/opencd/ show the three lines.
# See docs/degradations.md. Inherit at most one degradation mixin per config.
train_degradation = dict(type='hicd_mm.DegradeImage', degradation='resolution', scale=4,
                         kernel='bicubic', keep_hq=True)
test_degradation = dict(type='hicd_mm.DegradeImage', degradation='resolution', scale=4,
                        kernel='bicubic', keep_hq=False, seed=0)
# LQ baseline (no teacher): the same training degradation without the HQ copy.
lq_train_degradation = dict(train_degradation, keep_hq=False)
