# Dyn-RepAdapter (RepAdapter d=8), T=3 S=4, ViT-B/16, VTAB-1K (task cifar; others via --cfg-options, docs/dyn_adapter.md)
_base_ = [
    './_base_/dyn-repadapter_vit-b16.py', '../_base_/datasets/vtab1k_bs64.py',
    '../_base_/schedules/vtab1k_adamw_100e_warmup10.py'
]
# Train on train800, calibrate the exit thresholds on val200, test on test
# (the base's test_dataloader).
train_dataloader = dict(dataset=dict(split='train800'))
val_dataloader = dict(dataset=dict(split='val200'))
model = dict(num_classes=100)
val_evaluator = [dict(type='Accuracy', topk=(1, )), dict(type='EarlyExitMetric')]
test_evaluator = val_evaluator
# RepAdapter's scale s per task (its code's configs/repblock/<task>.yaml, which
# Dyn-Adapter follows [29]); tools/analysis_tools/vtab_table.py applies the
# options of each task it runs. The default task, cifar, has s = 0.1.
repadapter_scale = dict(
    cifar=0.1, caltech101=5.0, dtd=1.0, oxford_flowers102=0.5, oxford_iiit_pet=0.1, svhn=10.0,
    sun397=0.1, patch_camelyon=1.0, eurosat=1.0, resisc45=5.0, diabetic_retinopathy=0.1,
    clevr_count=0.5, clevr_dist=0.1, dmlab=5.0, kitti=5.0, dsprites_loc=5.0, dsprites_ori=0.1,
    smallnorb_azi=10.0, smallnorb_ele=1.0)
vtab_task_options = {
    task: {'model.backbone.petl.scale': scale} for task, scale in repadapter_scale.items()}
model = dict(backbone=dict(petl=dict(scale=0.1)))
