"""Refresh the README's result tables from results/tables/*.md.

    python reproduce/readme_blocks.py [README.md]

A block ``<!-- NAME:start -->`` ... ``<!-- NAME:end -->`` in the README is replaced by the content of
``results/tables/NAME.md``; blocks whose table does not exist are left as they are. The README is rewritten
atomically, and only if something changed.
"""
from __future__ import annotations

import argparse
import os.path as osp
import re
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from mmdet_plugins.provenance import atomic_write_text  # noqa: E402

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


def refresh(readme: str, tables_dir: str) -> list:
    text = open(readme).read()
    updated = []
    for name in BLOCK.findall(text):
        table = osp.join(tables_dir, f'{name}.md')
        if osp.isfile(table):
            text = replace_block(text, name, open(table).read())
            updated.append(name)
    if text != open(readme).read():
        atomic_write_text(readme, text)
    return updated


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('readme', nargs='?', default=osp.join(REPO, 'README.md'))
    parser.add_argument('--tables', default=osp.join(REPO, 'results', 'tables'))
    args = parser.parse_args(argv)
    if not osp.isfile(args.readme):
        raise SystemExit(f'error: {args.readme} not found')
    print('refreshed blocks:', ', '.join(refresh(args.readme, args.tables)) or 'none')


if __name__ == '__main__':
    main()
