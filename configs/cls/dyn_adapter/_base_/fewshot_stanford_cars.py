# stanford_cars 16-shot (NOAH's split files) on top of the few-shot recipe
_base_ = ['./fewshot_bs64.py']
data_preprocessor = dict(num_classes=196)
data_root = 'data/few-shot/stanford_cars'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
