"""Real checkpoint files: safetensors files load (no pickle involved), the
format is told by the file's bytes and a file that is not what its name says,
or is cut short, is refused with an error naming the path and what the file
looks like; ``pretrained='hf-hub:<org>/<name>'`` loads from the Hugging Face
cache (the real cache layout, HF_HOME / HF_HUB_OFFLINE) and, when the weights
are not cached offline, the error names the repo, the cache and the command
that fetches them."""
import ast
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mmdyt.models.backbones import hub, read_checkpoint
from tiny_dyt import IMG_SIZE, PATCH_SIZE, tiny_arch, tiny_vit

safetensors_torch = pytest.importorskip('safetensors.torch')
pytest.importorskip('huggingface_hub')
timm_vit_module = pytest.importorskip('timm.models.vision_transformer')

ROOT = Path(__file__).resolve().parents[3]
SHA = '0123456789abcdef0123456789abcdef01234567'


def timm_state_dict(num_layers=1, seed=0):
    """The state dict of a tiny timm ``VisionTransformer`` (timm's own key
    names), random weights."""
    torch.manual_seed(seed)
    arch = tiny_arch(num_layers)
    model = timm_vit_module.VisionTransformer(
        img_size=IMG_SIZE, patch_size=PATCH_SIZE, embed_dim=arch['embed_dims'],
        depth=num_layers, num_heads=arch['num_heads'],
        mlp_ratio=arch['feedforward_channels'] / arch['embed_dims'], num_classes=0)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, 0.1)
    return {key: value.contiguous() for key, value in model.state_dict().items()}


def loaded(pretrained):
    """A tiny DyT ViT (dispatchers and adapters as built) whose ViT weights
    come from ``pretrained``."""
    model = tiny_vit(pretrained=str(pretrained))
    model.init_weights()
    return model


def assert_has_weights(model, state):
    own = model.state_dict()
    for key, value in state.items():
        assert torch.equal(own[key], value), key


def test_safetensors_file_loads_the_exact_weights_without_pickle(tmp_path, monkeypatch):
    state = timm_state_dict()
    path = tmp_path / 'model.safetensors'
    safetensors_torch.save_file(state, str(path))

    def no_pickle(*args, **kwargs):
        raise AssertionError('torch.load (pickle) used for a safetensors file')

    monkeypatch.setattr(torch, 'load', no_pickle)
    assert_has_weights(loaded(path), state)


def save_npz(state, path):
    with open(path, 'wb') as file:
        np.savez(file, **{key: value.numpy() for key, value in state.items()})


def test_format_is_told_by_content_not_name(tmp_path):
    state = timm_state_dict()
    safetensors_path = tmp_path / 'weights.pth'  # safetensors bytes, .pth name
    safetensors_torch.save_file(state, str(safetensors_path))
    assert_has_weights(loaded(safetensors_path), state)
    npz_path = tmp_path / 'arrays.npz'
    save_npz(state, npz_path)
    assert sorted(read_checkpoint(npz_path)) == sorted(state)
    renamed = tmp_path / 'npz_named.pth'
    renamed.write_bytes(npz_path.read_bytes())
    np.testing.assert_array_equal(read_checkpoint(renamed)['cls_token'], state['cls_token'])


@pytest.mark.parametrize('save, looks', [
    (lambda state, path: torch.save(state, path), 'a torch zip/pickle checkpoint; rename it .pth'),
    (lambda state, path: torch.save(state, path, _use_new_zipfile_serialization=False),
     'a torch zip/pickle checkpoint; rename it .pth'),
    (save_npz, 'a numpy .npz archive; rename it .npz'),
], ids=['torch-zip', 'torch-legacy-pickle', 'npz'])
def test_other_format_named_safetensors_is_refused(tmp_path, save, looks):
    path = tmp_path / 'model.safetensors'
    save(timm_state_dict(), str(path))
    message = rf'checkpoint {re.escape(str(path))} is not a safetensors file: it is {looks}'
    with pytest.raises(ValueError, match=message):
        read_checkpoint(path)
    with pytest.raises(ValueError, match=message):
        loaded(path)


@pytest.mark.parametrize('cut', [lambda size: size // 2, lambda size: 20],
                         ids=['data-cut', 'header-cut'])
def test_truncated_safetensors_is_named(tmp_path, cut):
    whole = tmp_path / 'whole.safetensors'
    safetensors_torch.save_file(timm_state_dict(), str(whole))
    data = whole.read_bytes()
    path = tmp_path / 'truncated.safetensors'
    path.write_bytes(data[:cut(len(data))])
    with pytest.raises(ValueError, match=rf'cannot read checkpoint {re.escape(str(path))}: the '
                       r'file is truncated, corrupt or not a checkpoint \(it looks like a '
                       r'(truncated )?safetensors file'):
        loaded(path)


def test_empty_or_garbage_safetensors_is_named(tmp_path):
    empty = tmp_path / 'empty.safetensors'
    empty.write_bytes(b'')
    with pytest.raises(ValueError, match=rf'{re.escape(str(empty))} is not a safetensors file: '
                       'it is an empty file'):
        read_checkpoint(empty)
    garbage = tmp_path / 'page.safetensors'  # e.g. an HTML error page saved by a download
    garbage.write_bytes(b'<!DOCTYPE html><html>Not found</html>')
    with pytest.raises(ValueError, match=rf'{re.escape(str(garbage))} is not a safetensors '
                       'file: it is a file of no known checkpoint format'):
        read_checkpoint(garbage)


# --- hf-hub: -----------------------------------------------------------------


def write_hub_cache(hub_dir, repo_id, files, sha=SHA, ref='main'):
    """``files`` (name -> bytes) as huggingface_hub caches them: blobs named
    by their hash, ``snapshots/<sha>/<name>`` links to them, ``refs/<ref>``
    holding the sha."""
    repo = Path(hub_dir) / ('models--' + repo_id.replace('/', '--'))
    snapshot = repo / 'snapshots' / sha
    snapshot.mkdir(parents=True)
    (repo / 'blobs').mkdir(exist_ok=True)
    for name, data in files.items():
        blob = repo / 'blobs' / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        try:
            (snapshot / name).symlink_to(os.path.relpath(blob, snapshot))
        except OSError:  # no symlinks (Windows without developer mode)
            (snapshot / name).write_bytes(data)
    (repo / 'refs').mkdir(exist_ok=True)
    (repo / 'refs' / ref).write_text(sha)
    return snapshot


def safetensors_bytes(state, tmp_path):
    path = tmp_path / 'tmp.safetensors'
    safetensors_torch.save_file(state, str(path))
    data = path.read_bytes()
    path.unlink()
    return data


def test_hf_hub_spec_loads_from_the_cache_offline(tmp_path):
    """The real thing: a fresh process whose huggingface_hub reads HF_HOME and
    HF_HUB_OFFLINE from the environment; then a repo that is not cached."""
    state = timm_state_dict()
    data = safetensors_bytes(state, tmp_path)
    write_hub_cache(tmp_path / 'hub', 'timm/vit_tiny_test', {'model.safetensors': data})
    (tmp_path / 'expected.safetensors').write_bytes(data)
    script = '\n'.join([
        'import sys, torch',
        'from safetensors.torch import load_file',
        'from tiny_dyt import tiny_vit',
        "model = tiny_vit(pretrained='hf-hub:timm/vit_tiny_test')",
        'model.init_weights()',
        'own = model.state_dict()',
        'for key, value in load_file(sys.argv[1]).items():',
        '    assert torch.equal(own[key], value), key',
        "print('LOADED', len(own))",
        'try:',
        "    tiny_vit(pretrained='hf-hub:timm/vit_not_cached@v2').init_weights()",
        'except ValueError as error:',
        "    print('ERROR', error)",
    ])
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(('HF_', 'HUGGINGFACE_')) and key != 'TRANSFORMERS_OFFLINE'}
    env.update(HF_HOME=str(tmp_path), HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([str(ROOT / 'tests' / 'data'), str(ROOT)]))
    result = subprocess.run([sys.executable, '-c', script, str(tmp_path / 'expected.safetensors')],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'LOADED' in result.stdout
    error = result.stdout.split('ERROR ', 1)[1]
    assert 'timm/vit_not_cached (revision v2)' in error
    assert 'model.safetensors, open_clip_model.safetensors' in error
    assert str(tmp_path / 'hub') in error
    assert 'HF_HUB_OFFLINE is set' in error
    assert '`hf download timm/vit_not_cached model.safetensors --revision v2`' in error
    assert 'huggingface-cli download timm/vit_not_cached' in error


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty offline Hub cache for this process (huggingface_hub read the
    environment when it was imported: its constants are what it uses)."""
    from huggingface_hub import constants
    hub_dir = tmp_path / 'hub'
    hub_dir.mkdir()
    monkeypatch.setattr(constants, 'HF_HUB_CACHE', str(hub_dir))
    monkeypatch.setattr(constants, 'HF_HOME', str(tmp_path))
    monkeypatch.setattr(constants, 'HF_HUB_OFFLINE', True)
    return hub_dir


def test_hf_hub_revision_and_file_names(tmp_path, hub_cache):
    state = timm_state_dict()
    data = safetensors_bytes(state, tmp_path)
    other = safetensors_bytes(timm_state_dict(seed=1), tmp_path)
    # timm's file wins over the older .bin; an OpenCLIP repo's file is found
    snapshot = write_hub_cache(hub_cache, 'timm/both', {'model.safetensors': data,
                                                        'pytorch_model.bin': b'not read'})
    assert hub.resolve_checkpoint('hf-hub:timm/both') == str(snapshot / 'model.safetensors')
    snapshot = write_hub_cache(hub_cache, 'laion/clip', {'open_clip_model.safetensors': other})
    assert hub.resolve_checkpoint('hf-hub:laion/clip') == str(
        snapshot / 'open_clip_model.safetensors')
    # a pinned commit and a tag
    write_hub_cache(hub_cache, 'timm/pinned', {'model.safetensors': data}, ref='v1.0')
    assert_has_weights(loaded(f'hf-hub:timm/pinned@{SHA}'), state)
    assert_has_weights(loaded('hf-hub:timm/pinned@v1.0'), state)
    with pytest.raises(ValueError, match=r'timm/pinned \(revision main\) is in the local Hub '
                       rf'cache {re.escape(str(hub_cache))}'):
        loaded('hf-hub:timm/pinned')


def test_hf_hub_empty_cache_offline_names_repo_and_command(hub_cache, monkeypatch):
    import huggingface_hub

    def no_download(*args, **kwargs):
        raise AssertionError('downloaded while HF_HUB_OFFLINE is set')

    monkeypatch.setattr(huggingface_hub, 'hf_hub_download', no_download)
    with pytest.raises(ValueError) as error:
        loaded('hf-hub:timm/vit_base_patch14_dinov2.lvd142m')
    message = str(error.value)
    assert "pretrained='hf-hub:timm/vit_base_patch14_dinov2.lvd142m'" in message
    assert 'Hugging Face repo timm/vit_base_patch14_dinov2.lvd142m (revision main)' in message
    assert ', '.join(hub.WEIGHT_FILES) in message
    assert str(hub_cache) in message
    assert 'hf download timm/vit_base_patch14_dinov2.lvd142m model.safetensors' in message


def test_hf_hub_download_tries_the_file_names_in_order(tmp_path, hub_cache, monkeypatch):
    import huggingface_hub
    from huggingface_hub import errors
    state = timm_state_dict()
    downloaded = tmp_path / 'open_clip_model.safetensors'
    safetensors_torch.save_file(state, str(downloaded))
    asked = []

    def fake_download(repo_id, filename, revision=None):
        asked.append((repo_id, filename, revision))
        if filename != 'open_clip_model.safetensors':
            raise errors.EntryNotFoundError(f'{filename} not in {repo_id}')
        return str(downloaded)

    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_OFFLINE', False)
    monkeypatch.setattr(huggingface_hub, 'hf_hub_download', fake_download)
    assert_has_weights(loaded('hf-hub:laion/CLIP-ViT-B-16-laion2B-s34B-b88K@abc'), state)
    assert asked == [('laion/CLIP-ViT-B-16-laion2B-s34B-b88K', 'model.safetensors', 'abc'),
                     ('laion/CLIP-ViT-B-16-laion2B-s34B-b88K', 'open_clip_model.safetensors',
                      'abc')]

    def unreachable(repo_id, filename, revision=None):
        raise errors.LocalEntryNotFoundError('cannot reach huggingface.co')

    monkeypatch.setattr(huggingface_hub, 'hf_hub_download', unreachable)
    with pytest.raises(ValueError, match=r'timm/vit_x \(revision main\) is in the local Hub cache '
                       r'.*the Hub could not be reached \(cannot reach huggingface.co\).*'
                       r'`hf download timm/vit_x model.safetensors`'):
        hub.resolve_checkpoint('hf-hub:timm/vit_x')

    def not_in_repo(repo_id, filename, revision=None):
        raise errors.EntryNotFoundError(f'{filename} not in {repo_id}')

    monkeypatch.setattr(huggingface_hub, 'hf_hub_download', not_in_repo)
    with pytest.raises(ValueError, match=r'repo timm/vit_x has none of the weight files '
                       r'model.safetensors, open_clip_model.safetensors, '
                       r'open_clip_pytorch_model.bin, pytorch_model.bin'):
        hub.resolve_checkpoint('hf-hub:timm/vit_x')


@pytest.mark.parametrize('spec', ['hf-hub:vit_base', 'hf-hub:timm/', 'hf-hub:a/b/c',
                                  'hf-hub:timm/vit@'])
def test_malformed_hf_hub_spec(spec):
    with pytest.raises(ValueError, match=rf"pretrained='{re.escape(spec)}' is not a Hub repo: "
                       r"expected 'hf-hub:<org>/<name>'"):
        read_checkpoint(spec)


def test_hf_hub_without_huggingface_hub_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, 'huggingface_hub', None)
    with pytest.raises(ImportError, match=r"pretrained='hf-hub:timm/vit_x' needs the "
                       'huggingface_hub package: pip install huggingface_hub'):
        read_checkpoint('hf-hub:timm/vit_x')


def test_hub_module_imports_huggingface_hub_lazily():
    tree = ast.parse(Path(hub.__file__).read_text())
    top_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    names = [alias.name for node in top_level for alias in node.names]
    names += [node.module for node in top_level if isinstance(node, ast.ImportFrom)]
    assert not any(name and name.startswith('huggingface_hub') for name in names), names
