# FitNets feature-MSE baseline (docs/method.md, "Baselines"): a drop-in replacement of
# hicd_default.py that distils the raw features instead of their correlations, at the same
# feature points as HiCD: every encoder stage of each date (semantic) and the decoder feature
# fed to the classifier (change). Each term owns one learnable 1x1 adapter per stage (student ->
# teacher channels); HiCDDistiller fills in student_channels / teacher_channels from its dry
# run, so no channel count is written here. loss_weight=0 (or the term set to None) switches it off.
hicd_terms = dict(
    sem_feat_mse=dict(feature='semantic', loss=dict(type='FeatureMSELoss', loss_weight=1.0)),
    chg_feat_mse=dict(feature='change', loss=dict(type='FeatureMSELoss', loss_weight=1.0)),
)
# student-only checkpoints (plain detector keys) next to the distiller checkpoints
custom_hooks = [dict(type='hicd_mm.StudentCheckpointHook', interval=-1)]
