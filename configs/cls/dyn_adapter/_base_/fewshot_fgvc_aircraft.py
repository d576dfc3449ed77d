# fgvc_aircraft 16-shot (NOAH's split files) on top of the few-shot recipe
_base_ = ['./fewshot_bs64.py']
data_preprocessor = dict(num_classes=100)
data_root = 'data/few-shot/fgvc-aircraft'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
