"""Run by tests/mmdet_plugins/batchformer/test_global_batch.py under torchrun (gloo, CPU): one rank of the global
BatchFormerV2 layer. Writes this rank's outputs and gradients to OUT_DIR/rank<r>.pt."""
import os
import sys

import torch
import torch.distributed as dist


def main(out_dir):
    dist.init_process_group('gloo')
    rank = dist.get_rank()
    sys.path.insert(0, os.environ['REPO'])
    from mmdet_plugins.batchformer.layer import BatchFormerV2Layer
    data = torch.load(os.path.join(out_dir, 'inputs.pt'))
    layer = BatchFormerV2Layer(embed_dims=8, num_heads=2, feedforward_channels=16, dropout=0.0, global_batch=True)
    layer.load_state_dict(data['state'])
    x = data['x'][rank].clone().requires_grad_(True)
    pad = data['pad'][rank]
    y = layer(x, pad)
    (y * data['w'][rank]).sum().backward()
    torch.save(dict(y=y.detach(), x_grad=x.grad, grads={n: p.grad for n, p in layer.named_parameters()}),
               os.path.join(out_dir, f'rank{rank}.pt'))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1])
