# DyT with the dispatcher temperature cosine-decayed from 5 to 0.1 (Table 14), r=0.5, d=64, ViT-B/16, SVHN
_base_ = ['./dyt-r0.5_vit-b16_svhn.py']
custom_hooks = [
    dict(type='ActivationLoggerHook'),
    dict(type='TemperatureScheduleHook', tau_start=5.0, tau_end=0.1, policy='cosine'),
]
