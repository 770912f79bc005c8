"""Result tables inside markdown documents: blocks that hold a stored table, refreshed from results/tables/.

    python -m reproduce.runner.markdown [FILE.md ...]     (default: README.md, docs/, reproduce/ and tools/)

A block ``<!-- NAME:start -->`` ... ``<!-- NAME:end -->`` in a document is replaced by the content of
``results/tables/NAME.md``; a block whose table does not exist is an error that names it. A document is rewritten
atomically, and only if something changed.
"""
from __future__ import annotations

import argparse
import os.path as osp
import re
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from mmdet_plugins.utils.provenance import atomic_write_text  # noqa: E402

BLOCK = re.compile(r'<!-- (?P<name>[\w.-]+):start -->\n.*?<!-- (?P=name):end -->', re.S)


def replace_block(text: str, name: str, content: str) -> str:
    """Return ``text`` with block ``name`` holding ``content``; ValueError if the README has no such block."""
    start, end = f'<!-- {name}:start -->', f'<!-- {name}:end -->'
    if start not in text or end not in text:
        raise ValueError(f'no {start} ... {end} block')
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f'{head}{start}\n{content.rstrip()}\n{end}{tail}'


def write_table(table: str, out: str, readme: str = None, block: str = None) -> None:
    """Write a rendered table to ``out`` (atomically), print it, and with ``readme`` also replace the README's
    block ``block`` by it; a README without that block is an error that names it."""
    atomic_write_text(out, table)
    print(table)
    if readme:
        try:
            text = replace_block(open(readme).read(), block, table)
        except ValueError as e:
            raise SystemExit(f'error: {readme}: {e}')
        atomic_write_text(readme, text)
        print(f'updated {readme}')


def blocks(text: str) -> list:
    """The names of the blocks in ``text``, in order."""
    return BLOCK.findall(text)


def refresh(path: str, tables_dir: str) -> list:
    """Replace every block of the document ``path`` by its stored table; returns the block names. Raises
    ValueError naming a block whose table does not exist."""
    text = open(path).read()
    names = blocks(text)
    for name in names:
        table = osp.join(tables_dir, f'{name}.md')
        if not osp.isfile(table):
            raise ValueError(f'{path}: block {name!r} has no table {table}')
        text = replace_block(text, name, open(table).read())
    if text != open(path).read():
        atomic_write_text(path, text)
    return names


def documents(repo: str = REPO) -> list:
    """The documents that may hold result blocks: README.md, docs/ and the READMEs of reproduce/ and tools/."""
    import glob
    found = [osp.join(repo, 'README.md')]
    for folder in ('docs', 'reproduce', 'tools'):
        found += sorted(glob.glob(osp.join(repo, folder, '**', '*.md'), recursive=True))
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('files', nargs='*', help='markdown documents (default: README.md and the .md files of '
                        'docs/, reproduce/ and tools/)')
    parser.add_argument('--tables', default=osp.join(REPO, 'results', 'tables'))
    args = parser.parse_args(argv)
    for path in args.files or documents():
        if not osp.isfile(path):
            raise SystemExit(f'error: {path} not found')
        try:
            names = refresh(path, args.tables)
        except ValueError as e:
            raise SystemExit(f'error: {e}')
        print(f'{osp.relpath(path)}: refreshed {", ".join(names) or "no blocks"}')


if __name__ == '__main__':
    main()
