import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location('model_zoo', ROOT / 'tools/misc/model_zoo.py')
model_zoo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(model_zoo)


def test_every_config_has_a_description():
    for path in model_zoo.zoo_configs():
        assert model_zoo.description(path)


def test_readme_lists_every_config():
    readme = (ROOT / 'README.md').read_text()
    assert readme == model_zoo.updated_readme(), \
        'README.md model zoo is stale: run python tools/misc/model_zoo.py'
    for path in model_zoo.zoo_configs():
        assert path.relative_to(ROOT).as_posix() in readme


def test_config_without_description_is_refused(tmp_path):
    (tmp_path / 'configs/cls/x').mkdir(parents=True)
    (tmp_path / 'configs/cls/x/x_vit.py').write_text("_base_ = []\n")
    with pytest.raises(ValueError, match='x_vit.py: the first line'):
        model_zoo.render(tmp_path)
