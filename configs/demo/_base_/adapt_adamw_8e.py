# Adaptation schedule of the demo: AdamW, lr 1e-2 (after a 20-iteration
# warm-up) cosine-decayed over 8 epochs of the 800 training images (200
# iterations of 32), validated once at the end; tools/test.py tests. The high
# learning rate suits the few newly initialised weights of the PEFT methods in
# so short a schedule; the methods that train every weight use 1e-3.
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-2, weight_decay=1e-4), clip_grad=None)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=0, end=8,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=8, val_interval=8)
val_cfg = dict()
test_cfg = dict()
