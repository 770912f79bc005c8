"""Classification tests build from mmpretrain's registries: run each with mmpretrain as the default scope (other
tests leave mmdet's in place) and put the previous scope back after it."""
import pytest


@pytest.fixture(autouse=True)
def mmpretrain_scope():
    pytest.importorskip('mmpretrain')
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield
