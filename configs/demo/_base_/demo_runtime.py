# Runtime of the demo: the classification runtime, logging every 10
# iterations, no data workers (the datasets are in memory and the demo machine
# has 2 cores), one checkpoint at the end of training.
_base_ = ['../../cls/_base_/default_runtime.py']
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=-1, save_last=True,
                    max_keep_ckpts=1))
data_preprocessor = dict(
    num_classes=10, mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5],
    to_rgb=False)
randomness = dict(seed=0, deterministic=False)
