# Everything an adaptation run shares: the linear probe on the five unseen
# Fashion-MNIST classes with the demo schedule; each method's config changes
# only the backbone (and loss).
_base_ = ['./vit-6x96-p4_linear.py', './novel-fashion-1k_bs32.py',
          './adapt_adamw_8e.py', './demo_runtime.py']
model = dict(head=dict(num_classes=5))
data_preprocessor = dict(num_classes=5)
