"""The wheel is an OpenMMLab package: ``mmdyt/.mim`` carries configs/,
tools/ and model-index.yml (setup.py's build_py), so ``mmdyt::`` configs
resolve through mmengine and ``mim search mmdyt`` lists the model zoo.

The wheel is built from a copy of the sources (the checkout's ``build/`` and
``mmdyt/.mim`` symlinks stay untouched), installed with ``--no-deps`` into a
``--target`` folder and used from a subprocess with that folder first on
PYTHONPATH and this environment's packages behind it.
"""
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What the build reads (setup.py, MANIFEST.in and what they name).
SOURCES = ('setup.py', 'MANIFEST.in', 'README.md', 'CHANGELOG.md', 'model-index.yml',
           'requirements', 'mmdyt', 'configs', 'tools')
BASE_CONFIG = 'cls/dyt/dyt-r0.5-d8_vit-b16_vtab1k.py'
MIM = Path(sys.executable).parent / 'mim'

CHILD = textwrap.dedent(f"""
    import sys
    from pathlib import Path
    import mmdyt
    from mmengine.config import Config
    print('mmdyt', Path(mmdyt.__file__).parent)
    Path('child.py').write_text("_base_ = ['mmdyt::{BASE_CONFIG}']\\n")
    try:
        cfg = Config.fromfile('child.py')
    except AssertionError as error:
        sys.exit(f'mmdyt:: not resolved: {{error}}')
    path, scope = Config._get_cfg_path('mmdyt::{BASE_CONFIG}', 'child.py')
    print('base', scope, Path(path).resolve(), cfg.model.rate_loss.target_rate,
          cfg.model.backbone.adapter_dim)
""")


def run(cmd, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, (
        f'{cmd} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}')
    return result


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """(wheel, target folder) of a wheel built from a copy of the sources."""
    pytest.importorskip('wheel', reason='pip wheel --no-build-isolation needs the wheel package')
    tmp = tmp_path_factory.mktemp('packaging')
    src = tmp / 'src'
    src.mkdir()
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '.mim', '*.egg-info')
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=ignore)
        elif (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    run([sys.executable, '-m', 'pip', 'wheel', str(src), '--no-deps', '--no-build-isolation',
         '-w', str(tmp / 'dist'), '-q'])
    wheel, = (tmp / 'dist').glob('mmdyt-*.whl')
    run([sys.executable, '-m', 'pip', 'install', str(wheel), '--no-deps', '--target',
         str(tmp / 'site'), '-q'])
    return wheel, tmp / 'site'


def child_env(site):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(site)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]))
    return env


def test_wheel_carries_the_mim_files(installed):
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ['mmdyt/.mim/model-index.yml', 'mmdyt/.mim/tools/train.py',
                 'mmdyt/.mim/tools/test.py', 'mmdyt/.mim/tools/dist_train.sh',
                 'mmdyt/.mim/tools/misc/model_zoo.py', f'mmdyt/.mim/configs/{BASE_CONFIG}',
                 'mmdyt/.mim/configs/cls/_base_/models/vit-b16_dyt.py',
                 'mmdyt/.mim/configs/cls/dyt/metafile.yml', 'mmdyt/__init__.py']:
        assert name in names, name
    configs = {p.relative_to(ROOT).as_posix() for p in (ROOT / 'configs').rglob('*.py')}
    assert {f'mmdyt/.mim/{c}' for c in configs} <= names
    assert not [n for n in names if '__pycache__' in n or n.startswith('mmdyt/.mim/tests')]
    metadata = zipfile.ZipFile(wheel).read(f'{wheel.name.split("-py")[0]}.dist-info/METADATA')
    for requirement in ['mmengine<0.11,>=0.10.7', 'mmpretrain<1.3,>=1.2',
                        'onnxruntime; extra == "deploy"', 'pytest; extra == "tests"']:
        assert f'Requires-Dist: {requirement}' in metadata.decode(), requirement


def test_installed_wheel_resolves_mmdyt_configs(installed, tmp_path):
    _, site = installed
    result = run([sys.executable, '-c', CHILD], cwd=tmp_path, env=child_env(site))
    assert f'mmdyt {site / "mmdyt"}' in result.stdout, result.stdout
    base = (site / 'mmdyt/.mim/configs' / BASE_CONFIG).resolve()
    assert f'base mmdyt {base} 0.5 8' in result.stdout, result.stdout


def test_checkout_resolves_mmdyt_configs(tmp_path):
    """The editable install (``make env``) resolves ``mmdyt::`` too, through
    the ``mmdyt/.mim`` symlinks setup.py makes."""
    result = run([sys.executable, '-c', CHILD], cwd=tmp_path)
    assert f'mmdyt {ROOT / "mmdyt"}' in result.stdout, result.stdout
    assert f'base mmdyt {ROOT / "configs" / BASE_CONFIG} 0.5 8' in result.stdout, result.stdout


@pytest.mark.skipif(not MIM.exists(), reason='openmim is not installed')
def test_mim_search_lists_the_zoo(installed, tmp_path):
    _, site = installed
    result = run([str(MIM), 'search', 'mmdyt', '--config', 'dyt-r0.5_vit-b16_cifar100'],
                 cwd=tmp_path, env=child_env(site))
    assert 'config id: dyt-r0.5_vit-b16_cifar100' in result.stdout, result.stdout
    assert 'configs/cls/dyt/dyt-r0.5_vit-b16_cifar100.py' in result.stdout, result.stdout
