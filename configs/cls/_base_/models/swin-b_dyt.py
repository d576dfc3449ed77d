# Swin-B + Dynamic Tuning: MLP dispatch in every shifted-window block, adapter
# d=64, rate loss r=0.5 (DyT App. A.4).
_base_ = ['./swin-b_linear.py']
model = dict(
    backbone=dict(dispatch='mlp', adapter_dim=64, num_experts=1, tau=5.0),
    rate_loss=dict(type='ActivationRateLoss', target_rate=0.5, loss_weight=2.0))
