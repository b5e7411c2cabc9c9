# BANDON binary change (data/BANDON with list files, see BANDONDataset): random 512 crops,
# sliding-window testing (crop 512, stride 337, set in the model's test_cfg by leaf configs).
dataset_type = 'BANDONDataset'
data_root = 'data/BANDON'
crop_size = (512, 512)
train_pipeline = [
    dict(type='MultiImgLoadImageFromFile'),
    dict(type='MultiImgLoadAnnotations'),
    dict(type='MultiImgRandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='MultiImgRandomFlip', prob=0.5, direction=['horizontal', 'vertical']),
    dict(type='MultiImgRandomRot90', prob=0.5),
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
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='train.txt',
                 data_prefix=dict(img_path_from='train/imgs', img_path_to='train/imgs',
                                  seg_map_path='train/labels_unch0ch1ig255'),
                 format_seg_map=None, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='val.txt',
                 data_prefix=dict(img_path_from='val/imgs', img_path_to='val/imgs',
                                  seg_map_path='val/labels'),
                 format_seg_map='to_binary', pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='test.txt',
                 data_prefix=dict(img_path_from='test/imgs', img_path_to='test/imgs',
                                  seg_map_path='test/labels'),
                 format_seg_map='to_binary', pipeline=test_pipeline))
val_evaluator = dict(type='ChangeMetric')
test_evaluator = val_evaluator
