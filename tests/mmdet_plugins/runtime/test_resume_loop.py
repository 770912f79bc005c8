"""IndexSkippingIterBasedTrainLoop: a resume skips the trained batches by their indices, reads none of them, and
continues on the batches mmengine's own skip would give, in the same order."""
import os.path as osp

import pytest
from torch.utils.data import DataLoader, Dataset

from helpers import DETECTOR_CONFIGS, tiny_runner_cfg, write_tiny_coco


class IndexDataset(Dataset):
    """Item ``i`` is ``i``; counts its reads (in this process, so with ``num_workers=0`` only); half the items are
    portrait, for mmdet's AspectRatioBatchSampler."""

    def __init__(self, n: int = 37):
        self.n, self.reads = n, 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.reads += 1
        return i

    def get_data_info(self, i):
        return dict(width=10, height=20) if i % 3 == 0 else dict(width=20, height=10)


def loader(num_workers: int, aspect_ratio: bool, dataset=None, seed: int = 3):
    from mmdet.datasets.samplers import AspectRatioBatchSampler
    from mmengine.dataset import InfiniteSampler
    dataset = dataset or IndexDataset()
    sampler = InfiniteSampler(dataset, shuffle=True, seed=seed)
    kw = dict(num_workers=num_workers, persistent_workers=num_workers > 0, collate_fn=list)
    if aspect_ratio:
        return DataLoader(dataset, batch_sampler=AspectRatioBatchSampler(sampler, batch_size=4), **kw)
    return DataLoader(dataset, batch_size=4, sampler=sampler, **kw)


def batches_after(it, skip: int, take: int):
    for _ in range(skip):
        next(it)
    return [next(it) for _ in range(take)]


@pytest.mark.parametrize('num_workers', [0, 2], ids=['in-process', 'workers'])
@pytest.mark.parametrize('aspect_ratio', [False, True], ids=['batch-sampler', 'aspect-ratio'])
@pytest.mark.parametrize('skip', [1, 3, 25])  # fewer and more than the 2 x 2 batches the workers prefetch
def test_same_batches_as_mmengines_skip(num_workers, aspect_ratio, skip):
    from mmengine.runner.loops import _InfiniteDataloaderIterator
    from mmdet_plugins.runtime.resume_loop import IndexSkippingIterator
    expected = batches_after(_InfiniteDataloaderIterator(loader(num_workers, aspect_ratio)), skip, 12)
    it = IndexSkippingIterator(_InfiniteDataloaderIterator(loader(num_workers, aspect_ratio)), skip)
    skipped = [next(it) for _ in range(skip)]
    assert skipped == [None] * skip
    assert [next(it) for _ in range(12)] == expected
    assert len({i for b in expected for i in b}) > 4  # the data moved on: not one batch repeated


def test_skipped_batches_are_not_read():
    from mmengine.runner.loops import _InfiniteDataloaderIterator
    from mmdet_plugins.runtime.resume_loop import IndexSkippingIterator
    data = IndexDataset()
    it = IndexSkippingIterator(_InfiniteDataloaderIterator(loader(0, True, data)), 50)
    batches_after(it, 50, 2)
    assert data.reads == 8, 'only the two batches after the skip are read'
    data = IndexDataset()
    batches_after(_InfiniteDataloaderIterator(loader(0, True, data)), 50, 2)
    assert data.reads == 52 * 4  # what mmengine's skip reads


def test_finite_sampler_keeps_mmengines_skip():
    from mmdet_plugins.runtime.resume_loop import skips_by_index
    data = IndexDataset()
    assert skips_by_index(loader(0, True, data)) and skips_by_index(loader(0, False, data))
    assert not skips_by_index(DataLoader(data, batch_size=4, shuffle=True))


def test_resumed_run_trains_on_under_the_loop(tmp_path):
    """A Runner resumed through tools/train.py's choice of loop continues at the next iteration."""
    import mmdet_plugins  # noqa: F401
    from mmengine.runner import Runner
    data = write_tiny_coco(str(tmp_path / 'coco'))
    work = str(tmp_path / 'work')
    cfg = tiny_runner_cfg(DETECTOR_CONFIGS['DETR'][0], data, work, max_iters=2)
    Runner.from_cfg(cfg).train()
    cfg = tiny_runner_cfg(DETECTOR_CONFIGS['DETR'][0], data, work, max_iters=4)
    assert cfg.train_cfg.type == 'IterBasedTrainLoop' and cfg.train_dataloader.sampler.type == 'InfiniteSampler'
    cfg.resume = True
    cfg.train_cfg.type = 'IndexSkippingIterBasedTrainLoop'
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert type(runner.train_loop).__name__ == 'IndexSkippingIterBasedTrainLoop'
    assert runner.iter == 4 and osp.isfile(osp.join(work, 'iter_4.pth'))
    assert runner.train_loop.dataloader_iterator.skip_left == 0


def test_train_entry_point_uses_the_loop_only_to_resume(monkeypatch):
    import importlib.util
    from helpers import REPO
    spec = importlib.util.spec_from_file_location('bf_train_tool', osp.join(REPO, 'tools', 'train.py'))
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    monkeypatch.chdir(REPO)
    config = 'configs/mini/detr_r18_1xb16-mini.py'
    assert train.build_config(train.parse_args([config])).train_cfg.type == 'IterBasedTrainLoop'
    resumed = train.build_config(train.parse_args([config, '--resume']))
    assert resumed.train_cfg.type == 'IndexSkippingIterBasedTrainLoop'
    epochs = train.build_config(train.parse_args(['configs/detr/bf-detr_r50_8xb2-50e_coco.py', '--resume']))
    assert epochs.train_cfg.type == 'EpochBasedTrainLoop'
