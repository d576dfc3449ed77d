# The demo's target, VTAB-1K in miniature: the five Fashion-MNIST classes the
# pretraining never saw (Trouser, Dress, Coat, Shirt, Ankle boot), 800
# training and 200 validation images drawn by a fixed seed from their training
# split (VTAB-1K's train800 / val200), tested on all 5,000 test images of
# those classes. The validation split chooses nothing; it is reported.
fashion_root = '/usr/share/datasets/fashion-mnist'
novel_classes = [1, 3, 4, 6, 9]
pipeline = [dict(type='PackInputs')]
dataset = dict(type='IDXDataset', data_root=fashion_root, classes='fashion-mnist',
               class_subset=novel_classes, pipeline=pipeline)
train_dataloader = dict(
    batch_size=32, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(dataset, split='train', few_shot=dict(split='train', seed=0)))
val_dataloader = dict(
    batch_size=250, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(dataset, split='train', few_shot=dict(split='val', seed=0)))
test_dataloader = dict(
    batch_size=250, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(dataset, split='test'))
val_evaluator = [dict(type='Accuracy', topk=1), dict(type='EfficiencyMetric')]
test_evaluator = val_evaluator
