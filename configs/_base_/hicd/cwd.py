# Channel-wise distillation baseline (CWD, Shu et al. ICCV 2021; docs/method.md, "Baselines"):
# a drop-in replacement of hicd_default.py. Each channel of a feature map becomes a spatial
# distribution (softmax over positions, temperature tau) and the student matches the teacher's
# distributions in KL divergence, at the same feature points as HiCD: every encoder stage of
# each date (semantic) and the decoder feature fed to the classifier (change). HiCDDistiller
# passes the probed channel counts, so a 1x1 adapter is created only when the student's and
# teacher's channels differ. tau=1 and weight 1 are our choice (the CWD paper's tau=4 and
# weight 3 were set for logits). loss_weight=0 (or the term set to None) switches it off.
hicd_terms = dict(
    sem_cwd=dict(
        feature='semantic',
        loss=dict(type='ChannelWiseDivergenceLoss', tau=1.0, loss_weight=1.0)),
    chg_cwd=dict(
        feature='change', loss=dict(type='ChannelWiseDivergenceLoss', tau=1.0,
                                    loss_weight=1.0)),
)
# student-only checkpoints (plain detector keys) next to the distiller checkpoints
custom_hooks = [dict(type='hicd_mm.StudentCheckpointHook', interval=-1)]
