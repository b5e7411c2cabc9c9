_base_ = [
    '../_base_/models/changeformer_mit-b0.py', '../_base_/datasets/svcd.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_40k.py'
]

# Open-CD's ChangeFormer optimisation: AdamW lr 6e-5, no decay on norms / positional blocks,
# 10x learning rate on the decode head. Redeclare optim_wrapper (the parent's already holds the
# old optimizer dict).
optimizer = dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=optimizer,
    paramwise_cfg=dict(custom_keys={
        'pos_block': dict(decay_mult=0.0),
        'norm': dict(decay_mult=0.0),
        'head': dict(lr_mult=10.0)
    }))
