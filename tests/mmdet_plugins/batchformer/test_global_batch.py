"""BatchFormerV2 over the global batch (mmdet_plugins/batchformer/global_batch.py): two gloo processes on the CPU
compute what one process computes over the concatenated batch, forward and gradients."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from helpers import REPO
from mmdet_plugins.batchformer.layer import BatchFormerV2Layer, batch_attention_mask

WORKER = osp.join(osp.dirname(osp.abspath(__file__)), 'global_batch_worker.py')


def torchrun(nproc, *args, env=None, timeout=300):
    """``python -m torch.distributed.run --standalone`` (a free port of its own) on the CPU."""
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={nproc}', *args]
    env = dict(os.environ, REPO=REPO, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1', **(env or {}))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


def test_the_mask_against_every_ranks_images():
    """A query image sees every real key token at its position, and itself where its own token is padded."""
    pad_q = torch.tensor([[False, True], [False, False]])  # this rank's two images, two positions
    pad_k = torch.tensor([[False, False], [False, True], [False, False], [True, True]])  # all four images
    mask = batch_attention_mask(pad_q, pad_k, offset=1)  # this rank's images are keys 1 and 2
    assert mask.shape == (2, 1, 2, 4)
    assert mask[0, 0].tolist() == [[True, True, True, False], [True, True, True, False]]
    assert mask[1, 0].tolist() == [[False, True, False, False], [True, False, True, False]]


def test_the_option_changes_nothing_without_a_process_group():
    torch.manual_seed(0)
    plain = BatchFormerV2Layer(embed_dims=8, num_heads=2, feedforward_channels=16, dropout=0.0).eval()
    wide = BatchFormerV2Layer(embed_dims=8, num_heads=2, feedforward_channels=16, dropout=0.0,
                              global_batch=True).eval()
    wide.load_state_dict(plain.state_dict())
    x, pad = torch.randn(3, 5, 8), torch.rand(3, 5) < 0.3
    assert torch.equal(plain(x, pad), wide(x, pad))


@pytest.mark.slow
def test_two_ranks_equal_one_process_over_the_concatenated_batch(tmp_path):
    """Rank r's outputs and input gradients are the single-process rows of its images; the parameters' gradients,
    summed over ranks (what data-parallel training reduces), are the single-process gradients. Rank 1 has three
    images and rank 0 two (unequal batches), with padded tokens."""
    torch.manual_seed(0)
    layer = BatchFormerV2Layer(embed_dims=8, num_heads=2, feedforward_channels=16, dropout=0.0)
    sizes = [2, 3]
    x = [torch.randn(b, 6, 8) for b in sizes]
    pad = [torch.rand(b, 6) < 0.3 for b in sizes]
    w = [torch.randn(b, 6, 8) for b in sizes]
    torch.save(dict(state=layer.state_dict(), x=x, pad=pad, w=w), tmp_path / 'inputs.pt')
    res = torchrun(2, WORKER, 'layer', str(tmp_path))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]

    xs = torch.cat(x).requires_grad_(True)
    y = layer(xs, torch.cat(pad))
    (y * torch.cat(w)).sum().backward()
    ranks = [torch.load(tmp_path / f'rank{r}.pt') for r in range(2)]
    bounds = [0, sizes[0], sum(sizes)]
    for r, out in enumerate(ranks):
        torch.testing.assert_close(out['y'], y.detach()[bounds[r]:bounds[r + 1]], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(out['x_grad'], xs.grad[bounds[r]:bounds[r + 1]], rtol=1e-5, atol=1e-6)
    for name, p in layer.named_parameters():
        torch.testing.assert_close(ranks[0]['grads'][name] + ranks[1]['grads'][name], p.grad, rtol=1e-5, atol=1e-6)
    # and the global batch matters: rank 0 alone would compute something else
    alone = layer(x[0], pad[0])
    assert not torch.allclose(alone, ranks[0]['y'], atol=1e-4)


@pytest.mark.slow
def test_a_ranks_plain_stream_stays_independent_of_the_other_ranks_images(tmp_path):
    """Two ranks train BFDETR with global_batch=True: when rank 1's images change, rank 0's plain stream computes
    the same and its BatchFormerV2 stream does not (it sees rank 1's images)."""
    res = torchrun(2, WORKER, 'detector', str(tmp_path))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = torch.load(tmp_path / 'detector_rank0.pt')
    first, second = out['first'], out['second']  # (layers, 2B, queries, C): plain stream first
    B = first.size(1) // 2
    assert B == 2
    torch.testing.assert_close(first[:, :B], second[:, :B], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(first[:, B:], second[:, B:], atol=1e-4)
