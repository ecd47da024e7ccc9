/**
 * Links and anchors of a Markdown file, as GitHub renders them: what the
 * docs-links test and the consumer test's tarball check read.
 */

/** A link to another file of the repository (or to a heading of this one). */
export interface RelativeLink {
  /** The path as written, relative to the file ('' for `#anchor` links). */
  path: string;
  /** The part after `#`, if any. */
  anchor: string | undefined;
  line: number;
}

/** Markdown without fenced code blocks and inline code (lines kept, so line numbers stay right). */
function prose(markdown: string): string {
  return markdown
    .replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, (block) => block.replace(/[^\n]/g, ''))
    .replace(/(`+)[^`\n][\s\S]*?\1/g, (code) => code.replace(/[^\n]/g, ' '));
}

/** Every `[text](target)`, `![alt](target)` and `[label]: target` whose target is not a URL. */
export function relativeLinks(markdown: string): RelativeLink[] {
  const text = prose(markdown);
  const links: RelativeLink[] = [];
  const add = (target: string, index: number) => {
    const clean = target.trim().replace(/^<|>$/g, '').split(/\s+"/)[0];
    if (!clean || /^[a-z][a-z0-9+.-]*:/i.test(clean)) return;
    const [path, anchor] = clean.split('#', 2);
    links.push({ path: decodeURI(path), anchor, line: text.slice(0, index).split('\n').length });
  };
  for (const m of text.matchAll(/\]\(([^)\s]+(?:\s+"[^"]*")?)\)/g)) add(m[1], m.index);
  // Reference definitions; `[^1]: ...` is a footnote, not a link.
  for (const m of text.matchAll(/^ {0,3}\[(?!\^)[^\]]+\]:\s*(\S+)/gm)) add(m[1], m.index);
  return links;
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
export function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/<[^>]+>/g, '')
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors a file offers: one per heading (`-1`, `-2` for repeats) and any `<a id|name="...">`. */
export function anchors(markdown: string): Set<string> {
  const found = new Set<string>();
  const counts = new Map<string, number>();
  const text = prose(markdown);
  const lines = markdown.split('\n');
  for (const m of text.matchAll(/^#{1,6}[ \t]+\S.*$/gm)) {
    // Code is blanked out in `text` (line for line); the heading's words come from the original line.
    const original = lines[text.slice(0, m.index).split('\n').length - 1];
    const base = slug(original.replace(/^#{1,6}\s+/, '').replace(/\s+#+\s*$/, ''));
    const seen = counts.get(base) ?? 0;
    counts.set(base, seen + 1);
    found.add(seen ? `${base}-${seen}` : base);
  }
  for (const m of markdown.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) found.add(m[1]);
  return found;
}
