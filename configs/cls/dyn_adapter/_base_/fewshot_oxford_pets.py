# oxford_pets 16-shot (NOAH's split files) on top of the few-shot recipe
_base_ = ['./fewshot_bs64.py']
data_preprocessor = dict(num_classes=37)
data_root = 'data/few-shot/oxford-pets'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
