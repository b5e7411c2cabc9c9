# HiCD defaults plus response distillation of the change logits (docs/method.md, "Response KD"):
# KL(teacher || student) of the per-pixel class probabilities at temperature tau, recorded at
# the output of the classifier that change_feature points at (decode_head.conv_seg).
_base_ = ['./hicd_default.py']
hicd_terms = dict(
    chg_kd=dict(
        feature='change_logits',
        loss=dict(type='ResponseKDLoss', tau=1.0, loss_weight=1.0)),
)
