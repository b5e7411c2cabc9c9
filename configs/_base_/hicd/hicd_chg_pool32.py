# HiCD defaults with the change-feature correlations taken on maps average-pooled to 32 x 32
# (default: 64 x 64). For detectors whose change feature is wide and large, e.g. Open-CD's
# ChangeFormer head (256 channels at 64 x 64 for a 256 x 256 input), where the Gram products of
# the two change terms are most of the distillation's cost (docs/speed.md); its accuracy
# against the default is measured in docs/results.md ("Change-map pooling").
_base_ = ['./hicd_default.py']
hicd_terms = dict(
    chg_self=dict(loss=dict(pool_size=32)),
    chg_global=dict(loss=dict(pool_size=32)),
)
