#!/usr/bin/env python3
"""Assembles README.md from docs/readme/_main.md and its <!-- include: x.md [level=N] --> parts.

Each part's headings are shifted so its top heading sits at level 3 (inside the
"## ..." section that includes it). Missing parts are dropped (not written yet)."""
import pathlib
import re

root = pathlib.Path(__file__).resolve().parent.parent
parts = root / 'docs' / 'readme'


def shift_headings(text: str, top: int = 3) -> str:
    lines = text.splitlines()
    in_code = False
    levels = []
    for line in lines:
        if line.startswith('```'):
            in_code = not in_code
        elif not in_code and re.match(r'^#{1,6} ', line):
            levels.append(len(line) - len(line.lstrip('#')))
    if not levels:
        return text
    delta = top - min(levels)
    out, in_code = [], False
    for line in lines:
        if line.startswith('```'):
            in_code = not in_code
        elif not in_code and re.match(r'^#{1,6} ', line):
            level = len(line) - len(line.lstrip('#'))
            line = '#' * min(6, level + delta) + line[level:]
        out.append(line)
    return '\n'.join(out)


def include(match: re.Match) -> str:
    part = parts / match.group(1)
    top = int(match.group(2) or 3)
    return shift_headings(part.read_text().strip(), top) + '\n' if part.exists() else ''


main = (parts / '_main.md').read_text()
readme = re.sub(r'<!-- include: ([\w.-]+)(?: level=(\d))? -->\n', include, main)
(root / 'README.md').write_text(readme)
