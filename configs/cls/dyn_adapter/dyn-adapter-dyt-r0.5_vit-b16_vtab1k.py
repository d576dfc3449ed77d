# Dyn-Adapter early exits x DyT token dispatch (MLP, adapter d=8, r=0.5), ViT-B/16, VTAB-1K (task cifar)
_base_ = [
    './_base_/dyn-adapter_vit-b16.py', '../_base_/datasets/vtab1k_bs64.py',
    '../_base_/schedules/vtab1k_adamw_100e_warmup10.py'
]
# Train on train800, calibrate the exit thresholds on val200, test on test
# (the base's test_dataloader).
train_dataloader = dict(dataset=dict(split='train800'))
val_dataloader = dict(dataset=dict(split='val200'))
# The DyT adapters beside the MLP are the tuned modules; stage dropout sets
# their dropout. Exits and dispatch multiply their savings.
model = dict(
    backbone=dict(petl=None, dispatch='mlp', adapter_dim=8, adapter_scale=1.0, tau=5.0),
    num_classes=100,
    rate_loss=dict(type='ActivationRateLoss', target_rate=0.5, loss_weight=2.0))
val_evaluator = [
    dict(type='Accuracy', topk=(1, )),
    dict(type='EarlyExitMetric'),
    dict(type='EfficiencyMetric'),
]
test_evaluator = val_evaluator
