import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { anchors, relativeLinks } from '../support/markdown-links.js';

const ROOT = join(import.meta.dirname, '../..');

function markdownUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return markdownUnder(path);
    return entry.name.endsWith('.md') ? [path] : [];
  });
}

/** The docs a reader navigates: README, CONTRIBUTING, RELIABILITY and every page under docs/. */
const DOCS = [
  join(ROOT, 'README.md'),
  join(ROOT, 'CONTRIBUTING.md'),
  join(ROOT, 'RELIABILITY.md'),
  ...markdownUnder(join(ROOT, 'docs')),
];
const anchorCache = new Map<string, Set<string>>();
const anchorsOf = (file: string) => {
  let found = anchorCache.get(file);
  if (!found) anchorCache.set(file, (found = anchors(readFileSync(file, 'utf8'))));
  return found;
};

describe('docs', () => {
  it('have no broken relative link or anchor (README, CONTRIBUTING.md, docs/)', () => {
    const broken: string[] = [];
    for (const file of DOCS) {
      const where = relative(ROOT, file);
      for (const link of relativeLinks(readFileSync(file, 'utf8'))) {
        const target = link.path ? join(dirname(file), link.path) : file;
        const shown = `${where}:${link.line} -> ${link.path}${link.anchor !== undefined ? `#${link.anchor}` : ''}`;
        if (!existsSync(target)) {
          broken.push(`${shown} (no such file)`);
        } else if (link.anchor !== undefined) {
          if (!target.endsWith('.md') || statSync(target).isDirectory())
            broken.push(`${shown} (anchor into a non-Markdown file)`);
          else if (!anchorsOf(target).has(link.anchor)) broken.push(`${shown} (no such heading)`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it("lists every page under docs/ in the README's contents", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const contents = /^## Contents\n([\s\S]*?)^## /m.exec(readme)?.[1] ?? '';
    const listed = new Set(relativeLinks(contents).map((link) => link.path));
    const pages = markdownUnder(join(ROOT, 'docs')).map((file) => relative(ROOT, file));
    expect(pages.filter((page) => !listed.has(page))).toEqual([]);
  });

  it('keep the README short: about 300 lines, the rest on the pages it links', () => {
    const lines = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n').length;
    expect(lines).toBeLessThanOrEqual(320);
  });

  it('finds what the link checker is for (a broken link and a missing anchor are reported)', () => {
    const sample =
      '# Title\n\n## A `code` heading\n\n[ok](#a-code-heading) [bad](#nope) [file](missing.md) `[skip](x.md)`\n';
    expect(relativeLinks(sample).map((l) => `${l.path}#${l.anchor}`)).toEqual([
      '#a-code-heading',
      '#nope',
      'missing.md#undefined',
    ]);
    expect([...anchors(sample)]).toEqual(['title', 'a-code-heading']);
  });
});
