_base_ = [
    '../_base_/models/bit_r18.py', '../_base_/datasets/levir_cd.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_40k.py'
]
