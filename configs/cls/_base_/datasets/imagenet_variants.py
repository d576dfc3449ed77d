# The ImageNet domain-shift test sets from their folder releases (mmdyt.datasets.ImageNetVariant),
# labelled with ImageNet-1k indices; ImageNet-A / -R are scored on the logits of their 200 classes
# (SubsetAccuracy). A test config picks one: test_dataloader = dict(dataset={{_base_.imagenet_a}}).
imagenet_synsets = 'data/imagenet/LOC_synset_mapping.txt'
imagenet_variant_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(224, 224), interpolation='bicubic'),
    dict(type='PackInputs'),
]
imagenet_v2 = dict(_delete_=True, type='ImageNetVariant', variant='v2',
                   data_root='data/imagenetv2-matched-frequency-format-val',
                   pipeline=imagenet_variant_pipeline)
imagenet_sketch = dict(_delete_=True, type='ImageNetVariant', variant='sketch',
                       data_root='data/imagenet-sketch/sketch', synset_file=imagenet_synsets,
                       pipeline=imagenet_variant_pipeline)
imagenet_a = dict(_delete_=True, type='ImageNetVariant', variant='a',
                  data_root='data/imagenet-a', synset_file=imagenet_synsets,
                  pipeline=imagenet_variant_pipeline)
imagenet_r = dict(_delete_=True, type='ImageNetVariant', variant='r',
                  data_root='data/imagenet-r', synset_file=imagenet_synsets,
                  pipeline=imagenet_variant_pipeline)
imagenet_variant_evaluator = [dict(type='SubsetAccuracy', topk=(1, 5)),
                              dict(type='EarlyExitMetric')]
