# SV-CD / CDD season-varying (data/SVCD/{train,val,test}/{A,B,OUT}), 256x256 jpg pairs;
# jpg labels are thresholded at 128 (SVCDDataset).
dataset_type = 'SVCDDataset'
data_root = 'data/SVCD'
crop_size = (256, 256)
train_pipeline = [
    dict(type='MultiImgLoadImageFromFile'),
    dict(type='MultiImgLoadAnnotations'),
    dict(type='MultiImgRandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='MultiImgRandomFlip', prob=0.5, direction=['horizontal', 'vertical']),
    dict(type='MultiImgPhotoMetricDistortion', brightness_delta=10, contrast_range=(0.8, 1.2),
         saturation_range=(0.8, 1.2), hue_delta=10),
    dict(type='MultiImgPackSegInputs'),
]
test_pipeline = [
    dict(type='MultiImgLoadImageFromFile'),
    dict(type='MultiImgLoadAnnotations'),
    dict(type='MultiImgPackSegInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path_from='train/A', img_path_to='train/B',
                                  seg_map_path='train/OUT'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path_from='val/A', img_path_to='val/B',
                                  seg_map_path='val/OUT'),
                 pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path_from='test/A', img_path_to='test/B',
                                  seg_map_path='test/OUT'),
                 pipeline=test_pipeline))
val_evaluator = dict(type='ChangeMetric')
test_evaluator = val_evaluator
