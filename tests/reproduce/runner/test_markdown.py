"""reproduce/runner/markdown.py: the documents' result blocks hold exactly the stored tables."""
import os.path as osp

import pytest

from helpers import REPO
from reproduce.runner.markdown import BLOCK, blocks, documents, refresh, replace_block


def test_every_result_block_of_the_documents_is_the_stored_table():
    """README.md and docs/*.md show the tables of results/tables/ unchanged (refresh them with
    python -m reproduce.runner.markdown after a table is rewritten)."""
    seen = 0
    for path in documents():
        text = open(path).read()
        for match in BLOCK.finditer(text):
            name = match.group('name')
            table = osp.join(REPO, 'results', 'tables', f'{name}.md')
            assert osp.isfile(table), f'{path}: block {name} has no stored table'
            inner = match.group(0).split('\n', 1)[1].rsplit('\n', 1)[0]
            assert inner == open(table).read().rstrip(), f'{path}: block {name} differs from {table}'
            seen += 1
    assert seen >= 3  # the README shows at least the detection and cost tables


def test_refresh_replaces_blocks_and_names_a_missing_table(tmp_path):
    tables = tmp_path / 'tables'
    tables.mkdir()
    (tables / 'a.md').write_text('| new |\n')
    doc = tmp_path / 'doc.md'
    doc.write_text('intro\n<!-- a:start -->\n| old |\n<!-- a:end -->\nend\n')
    assert refresh(str(doc), str(tables)) == ['a']
    assert doc.read_text() == 'intro\n<!-- a:start -->\n| new |\n<!-- a:end -->\nend\n'
    doc.write_text('<!-- b:start -->\nx\n<!-- b:end -->\n')
    with pytest.raises(ValueError, match="block 'b' has no table"):
        refresh(str(doc), str(tables))
    assert doc.read_text() == '<!-- b:start -->\nx\n<!-- b:end -->\n'  # untouched
    assert blocks('<!-- x:start -->\n1\n<!-- x:end -->') == ['x']
    with pytest.raises(ValueError):
        replace_block('no blocks here', 'x', 'table')
