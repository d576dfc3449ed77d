"""Fixtures of the dataset tests."""
import pytest


@pytest.fixture
def mmpretrain_scope():
    """Default scope 'mmpretrain' (as a config's ``default_scope`` sets it),
    the previous scope restored afterwards."""
    pytest.importorskip('mmpretrain')
    import mmpretrain.datasets  # noqa: F401  registers mmpretrain modules
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield
