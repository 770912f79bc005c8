"""analysis/log_summary.py: losses and validations from mmengine json logs; malformed logs are named."""
import json
import sys

import pytest

from helpers import REPO

sys.path.insert(0, REPO)


def _write(path, rows):
    path.write_text(''.join(json.dumps(r) + '\n' for r in rows))
    return str(path)


def test_summary_reads_losses_and_validations(tmp_path):
    from analysis.log_summary import render, summarise
    rows = [dict(iter=i, loss=10.0 - i / 100, loss_cls=1.0, loss_bbox=0.5) for i in range(50, 301, 50)]
    rows.insert(3, {'coco/bbox_mAP': 0.125, 'step': 150})
    rows.append({'coco/bbox_mAP': 0.25, 'step': 300})
    s = summarise(_write(tmp_path / 'run-a.json', rows))
    assert s['run'] == 'run-a' and s['iterations'] == 300
    assert s['aps'] == [(150, 12.5), (300, 25.0)]
    assert s['loss_start'] == pytest.approx(9.0) and s['loss_end'] == pytest.approx(7.5)  # means of the first and last 3 logged losses
    assert '| run-a | 300 |' in render([s]) and '150: 12.5, 300: 25.0' in render([s])


def test_malformed_log_says_which_file_and_line(tmp_path):
    from analysis.log_summary import main
    bad = tmp_path / 'bad.json'
    bad.write_text('{"loss": 1.0, "iter": 50}\nnot json\n')
    with pytest.raises(SystemExit, match=r'bad.json, line 2: not json'):
        main([str(bad)])
    with pytest.raises(SystemExit, match='no such log file'):
        main([str(tmp_path / 'absent.json')])


def test_metric_at_iterations_is_read_from_that_log_row(tmp_path, capsys):
    from analysis.log_summary import main
    rows = [dict(iter=i, loss=10.0, loss_cls=1.0, loss_bbox=i / 1000) for i in range(50, 301, 50)]
    log = _write(tmp_path / 'run-b.json', rows)
    assert main([log, '--at', '100', '250']) == 0
    text = capsys.readouterr().out
    assert '| loss_bbox at 100 | loss_bbox at 250 |' in text and '| 0.10 | 0.25 |' in text
    with pytest.raises(SystemExit, match=r'no training log at iteration 120 \(nearest: \[100, 150\]\)'):
        main([log, '--at', '120'])
    with pytest.raises(SystemExit, match="no 'loss_giou'"):
        main([log, '--at', '100', '--key', 'loss_giou'])
    with pytest.raises(SystemExit):  # --key alone would be silently ignored
        main([log, '--key', 'loss_cls'])
    assert '--key names the metric that --at shows' in capsys.readouterr().err
