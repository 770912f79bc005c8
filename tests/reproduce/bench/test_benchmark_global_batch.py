"""reproduce/bench/benchmark_global_batch.py on the CPU: two gloo processes, both variants timed, one CSV row each."""
import os
import os.path as osp
import subprocess
import sys

import pandas as pd

from helpers import REPO


def test_two_processes_write_both_variants(tmp_path):
    out, table = tmp_path / 'cost.csv', tmp_path / 'cost.md'
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
           osp.join(REPO, 'reproduce', 'bench', 'benchmark_global_batch.py'), '--batch', '3', '--tokens', '20',
           '--channels', '16', '--rounds', '2', '--iters', '1', '--out', str(out), '--table', str(table)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1'))
    assert res.returncode == 0, res.stderr[-3000:]
    df = pd.read_csv(out)
    assert df.variant.tolist() == ['per_gpu', 'global'] and (df.world_size == 2).all()
    assert df.over_per_gpu.iloc[0] == 1.0 and df.s_per_step.gt(0).all()
    # the other rank's keys and values: 3 images x 20 tokens x 2 x 16 channels x 4 bytes
    assert df.gathered_mib_per_call.tolist() == [0.0, round(3 * 20 * 2 * 16 * 4 / 2 ** 20, 2)]
    rows = [line for line in table.read_text().splitlines() if line.startswith(('| per_gpu', '| global'))]
    assert len(rows) == 2 and '| 1.00 |' in rows[0] and 'gloo' in table.read_text()


def test_outside_torchrun_it_says_how_to_run_it():
    res = subprocess.run([sys.executable, osp.join(REPO, 'reproduce', 'bench', 'benchmark_global_batch.py')],
                         capture_output=True, text=True, timeout=120, env=dict(os.environ, CUDA_VISIBLE_DEVICES=''))
    assert res.returncode != 0 and res.stderr.strip().startswith('error: run it under torchrun')


def test_render_refuses_a_malformed_csv(tmp_path):
    bad = tmp_path / 'bad.csv'
    bad.write_text('variant,s_per_step\nglobal,1.0\n')
    res = subprocess.run([sys.executable, osp.join(REPO, 'reproduce', 'bench', 'benchmark_global_batch.py'),
                          '--render', str(bad), '--table', str(tmp_path / 't.md')], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode != 0 and 'missing columns' in res.stderr and not (tmp_path / 't.md').exists()
