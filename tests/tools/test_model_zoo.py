"""The model zoo (tools/misc/model_zoo.py): the metafiles, model-index.yml,
docs/model_zoo.md and README.md's model zoo section agree with the configs.
Two small configs are re-measured; the rest trust the stored figures."""
import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location('model_zoo', ROOT / 'tools/misc/model_zoo.py')
model_zoo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(model_zoo)

RUN = 'python tools/misc/model_zoo.py'
# Cheap to build and run; one with forced gates, one without dispatchers.
REMEASURED = ['configs/demo/dyt-moe4-r0.5_vit-6x96-p4_novel-fashion-1k.py',
              'configs/demo/vpt-deep-p5_vit-6x96-p4_novel-fashion-1k.py']


def rel(path):
    return path.relative_to(ROOT).as_posix()


def test_every_config_has_a_description():
    for path in model_zoo.zoo_configs():
        assert model_zoo.description(path)


def test_every_config_is_measured():
    figures = model_zoo.measured_figures()
    missing = [rel(p) for p in model_zoo.zoo_configs() if rel(p) not in figures]
    assert not missing, f'not measured (run {RUN} --measure --missing): {missing}'
    for config, data in figures.items():
        assert (ROOT / config).exists(), f'{config}: in a metafile, but no such config'
        assert data['FLOPs'] > 0 and data['Parameters'] >= data['Trainable Parameters'] > 0


def test_generated_files_are_current():
    """Metafiles, model-index.yml, the doc and README's section are what the
    configs (descriptions, names, families) and the stored figures give."""
    for path, text in model_zoo.outputs().items():
        assert (ROOT / path).exists(), f'{path} missing: run {RUN}'
        assert (ROOT / path).read_text() == text, f'{path} is stale: run {RUN}'


def test_doc_lists_every_config_with_its_description():
    doc = (ROOT / model_zoo.DOC).read_text()
    for path in model_zoo.zoo_configs():
        assert f'](../{rel(path)})' in doc, rel(path)
        assert model_zoo.description(path).replace('|', '\\|') in doc, rel(path)
    readme = (ROOT / 'README.md').read_text()
    section = readme.split(model_zoo.START)[1].split(model_zoo.END)[0]
    assert '(docs/model_zoo.md)' in section and '| --- |' not in section


def test_model_index_imports_one_metafile_per_family():
    index = yaml.safe_load((ROOT / model_zoo.INDEX).read_text())
    families = {model_zoo.metafile_path(*model_zoo.family(p)) for p in model_zoo.zoo_configs()}
    assert sorted(index['Import']) == sorted(families)
    names = []
    for path in index['Import']:
        meta = yaml.safe_load((ROOT / path).read_text())
        collection, = meta['Collections']
        assert collection['README'] and (ROOT / collection['README']).exists()
        for model in meta['Models']:
            assert model['In Collection'] == collection['Name']
            assert Path(model['Config']).parent == Path(path).parent
            names.append(model['Name'])
    assert len(names) == len(set(names)) == len(model_zoo.zoo_configs())


def test_model_index_loads_as_mim_reads_it():
    modelindex = pytest.importorskip('modelindex')
    index = modelindex.load(str(ROOT / model_zoo.INDEX))
    assert len(index.models) == len(model_zoo.zoo_configs())
    model = next(m for m in index.models if m.name == 'dyt-r0.5_vit-b16_cifar100')
    assert model.metadata.flops > 0 and model.in_collection == 'DyT'


def test_paper_figures_name_existing_configs():
    stems = {p.stem for p in model_zoo.zoo_configs()}
    assert set(model_zoo.PAPER_FIGURES) <= stems
    assert set(model_zoo.PAPER_RESULTS) <= stems


@pytest.mark.parametrize('config', REMEASURED)
def test_stored_figures_match_a_new_measurement(config, one_thread):
    stored = model_zoo.measured_figures()[config]
    assert model_zoo.measure(ROOT / config) == stored


def test_config_without_description_is_refused(tmp_path):
    (tmp_path / 'configs/cls/x').mkdir(parents=True)
    (tmp_path / 'configs/cls/x/x_vit_cifar100.py').write_text("_base_ = []\n")
    with pytest.raises(ValueError, match='x_vit_cifar100.py: the first line'):
        model_zoo.metafiles({}, tmp_path)


def test_check_names_what_is_stale(tmp_path):
    """A new config (or a changed description) makes --check fail until the
    tool is run; an unmeasured config is named with the command."""
    (tmp_path / 'configs/cls/x').mkdir(parents=True)
    config = tmp_path / 'configs/cls/x/x_vit-b16_cifar100.py'
    config.write_text('# X on CIFAR-100\n_base_ = []\n')
    (tmp_path / 'docs').mkdir()
    (tmp_path / 'README.md').write_text(f'# r\n{model_zoo.START}\nold\n{model_zoo.END}\ntail\n')
    diff, missing = model_zoo.stale(tmp_path)
    assert set(diff) == {'configs/cls/x/metafile.yml', 'model-index.yml', model_zoo.DOC,
                         'README.md'}
    assert missing == ['configs/cls/x/x_vit-b16_cifar100.py']
    figures = {'configs/cls/x/x_vit-b16_cifar100.py': {
        'FLOPs': 17_581_972_224, 'Parameters': 85_875_556, 'Trainable Parameters': 76_900,
        'Input Shape': '3x224x224'}}
    model_zoo.write(tmp_path, figures)
    assert model_zoo.stale(tmp_path) == ([], [])
    assert (tmp_path / 'README.md').read_text().endswith(f'{model_zoo.END}\ntail\n')
    assert '| x | [x_vit-b16_cifar100](../configs/cls/x/x_vit-b16_cifar100.py) | ' \
        'X on CIFAR-100 | 17.58 |  | 3x224x224 | 85.88 | 0.077 |  |' \
        in (tmp_path / model_zoo.DOC).read_text()
    config.write_text('# X, ViT-B/16, CIFAR-100\n_base_ = []\n')
    assert model_zoo.stale(tmp_path)[0] == ['configs/cls/x/metafile.yml', model_zoo.DOC]
