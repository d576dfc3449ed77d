"""``tools/test.py --show-dir``: every test image is drawn (N images -> N
drawings), not one in the hook's default interval."""
import train_runs


def test_show_dir_draws_every_test_image(tmp_path, monkeypatch):
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    num_test = 12
    task = train_runs.write_task(tmp_path / 'data', num_train=16, num_test=num_test)
    train_runs.train_on_task(tmp_path, task, 'train_cfg.max_iters=1')
    checkpoint = tmp_path / 'work' / 'iter_1.pth'
    assert checkpoint.exists()
    show_dir = tmp_path / 'work' / 'vis'
    train_runs.load_tool('test').main([
        str(tmp_path / 'tiny_task.py'), str(checkpoint), '--work-dir', str(tmp_path / 'work'),
        '--show-dir', str(show_dir), '--cfg-options', 'test_dataloader.batch_size=5'])
    drawings = [p for p in show_dir.rglob('*') if p.suffix in ('.png', '.jpg')]
    assert len(drawings) == num_test, sorted(p.name for p in drawings)
