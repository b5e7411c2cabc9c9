_base_ = [
    '../_base_/models/bit_r18.py', '../_base_/datasets/bandon.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_40k.py'
]
model = dict(test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(337, 337)))
