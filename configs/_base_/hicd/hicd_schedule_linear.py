# HiCD defaults with the distillation weights decayed linearly from 1 to 0 over the run
# (DistillWeightScheduleHook; begin/end/stop_at are fractions of max_iters). Other shapes:
# schedule='cosine', floor=0.1, stop_at=0.6 (off from 60 % of the run on), terms=['chg_self'].
_base_ = ['./hicd_default.py']
distill_weight_schedule = dict(
    type='DistillWeightScheduleHook', schedule='linear', begin=0.0, end=None, floor=0.0,
    stop_at=None, terms=None)
custom_hooks = [
    dict(type='StudentCheckpointHook', interval=-1),
    distill_weight_schedule,
]
