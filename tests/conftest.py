"""Shared test set-up.

* The helper modules of ``tests/data`` (``train_runs``, the DDP checks) and
  ``tests/datasets`` (``dataset_writers``) import by name in every test.
* mmengine keeps one global default scope, and the last test to set it wins.
  A test module that builds from a toolbox registry declares
  ``DEFAULT_SCOPE = 'mmaction'`` (or 'mmseg', 'mmpretrain'), and the scope is
  set before each of its tests, whatever ran before.
"""
import sys
from pathlib import Path

import pytest
from mmengine.registry import init_default_scope

TESTS = Path(__file__).resolve().parent
sys.path[:0] = [str(TESTS / 'data'), str(TESTS / 'datasets')]


@pytest.fixture(autouse=True)
def _default_scope(request):
    scope = getattr(request.module, 'DEFAULT_SCOPE', None)
    if scope is not None:
        init_default_scope(scope)
