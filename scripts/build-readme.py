#!/usr/bin/env python3
"""Assembles README.md from docs/readme/_main.md and its <!-- include: x.md --> parts.
Missing parts are dropped (a section not written yet)."""
import re, pathlib
root = pathlib.Path(__file__).resolve().parent.parent
parts = root / 'docs' / 'readme'
main = (parts / '_main.md').read_text()
def include(m):
    p = parts / m.group(1)
    return p.read_text().strip() + '\n' if p.exists() else ''
out = re.sub(r'<!-- include: ([\w.-]+) -->\n', include, main)
(root / 'README.md').write_text(out)
