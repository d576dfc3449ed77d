"""A ViT resized by ``--cfg-options model.backbone.arch=...``: train.py and
test.py carry the width to the head's ``in_channels`` (one try, not three)."""
import train_runs


def test_arch_option_carries_the_width_to_the_head(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    task = train_runs.write_task(tmp_path / 'data', num_train=8, num_test=4)
    # the tiny config is 48 wide (head in_channels=48); 't' is 192 wide
    train_runs.train_on_task(tmp_path, task, 'train_cfg.max_iters=1', 'model.backbone.arch=t',
                             'model.backbone.patch_size=16')
    out = capsys.readouterr().out
    assert '--cfg-options: model.head.in_channels: 48 -> 192 (the backbone width)' in out
    checkpoint = tmp_path / 'work' / 'iter_1.pth'
    metrics = train_runs.load_tool('test').main([
        str(tmp_path / 'tiny_task.py'), str(checkpoint), '--work-dir', str(tmp_path / 'work'),
        '--cfg-options', 'model.backbone.arch=t', 'model.backbone.patch_size=16'])
    assert 'model.head.in_channels: 48 -> 192' in capsys.readouterr().out
    assert 0.0 <= metrics['accuracy/top1'] <= 100.0
