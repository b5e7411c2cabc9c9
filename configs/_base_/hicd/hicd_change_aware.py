# HiCD defaults with change-aware change-feature terms (docs/method.md, "Change-aware terms"):
# every row of the change-feature affinities is weighted by the ground truth resized to the
# feature grid so that changed and unchanged positions carry half of the loss each, instead of
# the unchanged/unchanged pairs that dominate it otherwise.
_base_ = ['./hicd_default.py']
hicd_terms = dict(
    chg_self=dict(loss=dict(class_balance='rows')),
    chg_global=dict(loss=dict(class_balance='rows')),
)
