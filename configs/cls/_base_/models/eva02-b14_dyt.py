# EVA-02 ViT-B/14 + Dynamic Tuning: MLP dispatch, adapter d=64, rate loss r=0.5;
# the rotary positions follow each token through the packed attention.
_base_ = ['./eva02-b14_linear.py']
model = dict(
    backbone=dict(dispatch='mlp', adapter_dim=64, num_experts=1, tau=5.0),
    rate_loss=dict(type='ActivationRateLoss', target_rate=0.5, loss_weight=2.0))
