"""mmengine keeps one global default scope, and the last test to set it wins.
A test module that builds from a toolbox registry declares
``DEFAULT_SCOPE = 'mmaction'`` (or 'mmseg', 'mmpretrain'), and the scope is set
before each of its tests, whatever ran before."""
import pytest
from mmengine.registry import init_default_scope


@pytest.fixture(autouse=True)
def _default_scope(request):
    scope = getattr(request.module, 'DEFAULT_SCOPE', None)
    if scope is not None:
        init_default_scope(scope)
