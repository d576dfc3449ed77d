# Everything an adaptation run shares: the linear probe on MNIST-5k with the
# demo schedule; each method's config changes only the backbone (and loss).
_base_ = ['./vit-6x96-p4_linear.py', './mnist5k_bs32.py',
          './adapt_adamw_4e.py', './demo_runtime.py']
