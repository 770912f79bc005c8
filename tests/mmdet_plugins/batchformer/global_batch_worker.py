"""Run by tests/mmdet_plugins/batchformer/test_global_batch.py under torchrun (gloo, CPU), one process per rank:

    global_batch_worker.py layer OUT_DIR      the global BatchFormerV2 layer on OUT_DIR/inputs.pt's rank slice:
                                              writes this rank's outputs and gradients to OUT_DIR/rank<r>.pt
    global_batch_worker.py detector OUT_DIR   a two-stream BFDETR step with global_batch=True, twice, rank 1's images
                                              changed the second time: writes rank 0's decoder states
"""
import os
import sys

import torch
import torch.distributed as dist


def layer_check(out_dir, rank):
    from mmdet_plugins.batchformer.layer import BatchFormerV2Layer
    data = torch.load(os.path.join(out_dir, 'inputs.pt'))
    layer = BatchFormerV2Layer(embed_dims=8, num_heads=2, feedforward_channels=16, dropout=0.0, global_batch=True)
    layer.load_state_dict(data['state'])
    x = data['x'][rank].clone().requires_grad_(True)
    y = layer(x, data['pad'][rank])
    (y * data['w'][rank]).sum().backward()
    torch.save(dict(y=y.detach(), x_grad=x.grad, grads={n: p.grad for n, p in layer.named_parameters()}),
               os.path.join(out_dir, f'rank{rank}.pt'))


def detector_check(out_dir, rank):
    from helpers import build_detector, make_batch, no_dropout
    torch.manual_seed(0)
    model = no_dropout(build_detector('DETR')).train()
    for module in model.batchformer:
        module.global_batch = True
    states = []
    model.decoder.register_forward_hook(lambda mod, args, out: states.append(out.detach()))
    inputs, samples = make_batch(sizes=((64, 96), (64, 96)), seed=rank)
    model.loss(inputs, samples)
    if rank == 1:
        inputs = torch.randn_like(inputs)  # new content for rank 1's images
    model.loss(inputs, samples)
    if rank == 0:
        torch.save(dict(first=states[0], second=states[1]), os.path.join(out_dir, 'detector_rank0.pt'))


def main(mode, out_dir):
    dist.init_process_group('gloo')
    sys.path[:0] = [os.environ['REPO'], os.path.join(os.environ['REPO'], 'tests')]
    (layer_check if mode == 'layer' else detector_check)(out_dir, dist.get_rank())
    dist.barrier()
    dist.destroy_process_group()


if __name__ == '__main__':
    main(*sys.argv[1:3])
