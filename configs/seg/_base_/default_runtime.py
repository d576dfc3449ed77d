default_scope = 'mmseg'
custom_imports = dict(imports=['mmdyt'], allow_failed_imports=False)

env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
# rate_layer{i}, activation_rate and gflops of every training iteration, to the log
# and to every vis backend (TensorboardVisBackend included), as the cls configs do.
custom_hooks = [dict(type='ActivationLoggerHook')]
log_level = 'INFO'
load_from = None
resume = False
