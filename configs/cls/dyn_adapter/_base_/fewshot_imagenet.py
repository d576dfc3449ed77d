# ImageNet 16-shot (NOAH's domain-generalization split files, Dyn-Adapter Table 6) on top of
# the few-shot recipe: data/imagenet/images/..., lists `path label` in data/imagenet/annotations/;
# validation and test on ImageNet's val list. The *_test-{v2,sketch,a,r} configs test on the
# domain-shift sets instead.
_base_ = ['./fewshot_bs64.py']
data_preprocessor = dict(num_classes=1000)
data_root = 'data/imagenet'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root, ann_file='annotations/val_meta.list'))
test_dataloader = dict(dataset=dict(data_root=data_root, ann_file='annotations/val_meta.list'))
