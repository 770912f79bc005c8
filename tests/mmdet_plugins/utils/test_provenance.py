import os

import pytest

from mmdet_plugins.utils.provenance import atomic_write_text, git_commit, hardware


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / 'a.csv'
    atomic_write_text(str(path), 'x,y\n1,2\n')
    assert path.read_text() == 'x,y\n1,2\n'


    with pytest.raises(TypeError):
        atomic_write_text(str(path), None)  # a failing write
    assert path.read_text() == 'x,y\n1,2\n'
    assert os.listdir(tmp_path) == ['a.csv'], 'no temporary file left behind'


def test_commit_and_hardware(monkeypatch):
    monkeypatch.setenv('BF_COMMIT', 'abc123')
    assert git_commit() == 'abc123'
    assert hardware().startswith('cpu:')
