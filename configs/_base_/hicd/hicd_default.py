# HiCD defaults shared by every HiCD student config (equations: docs/method.md).
# Each term compares student and teacher correlations; loss_weight=0 (or the term set to None) switches it off.
# self: within one image; cross: t1 <-> t2 of one pair; global: between positions of different
# images of the batch (GlobalCorrelationLoss blocks='cross_image'; blocks='all' is the whole
# batch affinity, whose diagonal blocks repeat the self term).
# Mixins that start from this file: hicd_change_aware.py, hicd_response_kd.py,
# hicd_schedule_linear.py, hicd_grad_ratio.py.
# pool_size=64: maps larger than 64 x 64 are average-pooled before the correlations are taken
# (the same as hicd_mm.models.distillers.default_hicd_terms()).
corr_pool_size = 64
hicd_terms = dict(
    # semantic feature distillation: every encoder stage, each date / the pair of dates
    sem_self=dict(
        feature='semantic',
        loss=dict(type='SelfCorrelationLoss', loss_weight=1.0, pool_size=corr_pool_size)),
    sem_cross=dict(
        feature='semantic_pair',
        loss=dict(type='CrossCorrelationLoss', loss_weight=1.0, pool_size=corr_pool_size)),
    sem_global=dict(
        feature='semantic',
        loss=dict(type='GlobalCorrelationLoss', loss_weight=1.0, pool_size=corr_pool_size)),
    # change feature distillation: the decoder feature fed to the classifier
    chg_self=dict(
        feature='change',
        loss=dict(type='SelfCorrelationLoss', loss_weight=1.0, pool_size=corr_pool_size)),
    chg_global=dict(
        feature='change',
        loss=dict(type='GlobalCorrelationLoss', loss_weight=1.0, pool_size=corr_pool_size)),
)
# student-only checkpoints (plain detector keys) next to the distiller checkpoints
custom_hooks = [dict(type='hicd_mm.StudentCheckpointHook', interval=-1)]
