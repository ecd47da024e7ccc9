import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const README_PATH = join(import.meta.dirname, '../../../README.md');

/** What the README tells a user to install, write and run, as the consumer test uses it. */
export interface QuickStart {
  /** The packages of the install line (`npm install switchyard ...`), in order. */
  packages: string[];
  /** The versions the README asks a Nest 11 app for (`@nestjs/microservices@^11`, ...). */
  nest11Versions: string[];
  /** The quick start's files: every code block whose first line is a comment naming a path. */
  files: Map<string, string>;
  /** The quick start's `npx ...` commands (type generation, the build), continuation lines joined. */
  commands: string[];
  /** The text of the block that runs the apps. */
  runBlock: string;
}

interface CodeBlock {
  language: string;
  body: string;
}

/** The text of one `## ` section, up to the next `## ` heading (code blocks included). */
function section(markdown: string, title: string): string {
  const start = markdown.search(new RegExp(`^## ${title}\\s*$`, 'm'));
  if (start < 0) throw new Error(`README.md has no '## ${title}' section`);
  const rest = markdown.slice(start + 3);
  const end = rest.search(/^## /m);
  return end < 0 ? rest : rest.slice(0, end);
}

function codeBlocks(markdown: string): CodeBlock[] {
  return [...markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```\s*$/gm)].map((m) => ({ language: m[1], body: m[2] }));
}

/** `// src/orders/main.ts` or `# config/discovery.toml` on a block's first line names the file it is. */
function namedPath(block: CodeBlock): string | undefined {
  const first = block.body.split('\n', 1)[0];
  return /^(?:\/\/|#) ((?:[\w-]+\/)+[\w.-]+\.\w+)$/.exec(first)?.[1];
}

/**
 * Reads the README's Install and Quick start sections: the consumer test
 * builds its apps from exactly this, so the README cannot drift from what
 * works.
 */
export function readQuickStart(markdown = readFileSync(README_PATH, 'utf8')): QuickStart {
  const install = section(markdown, 'Install');
  const installLine = codeBlocks(install)
    .flatMap((b) => b.body.split('\n'))
    .find((line) => line.startsWith('npm install switchyard'));
  if (!installLine) throw new Error("README.md's Install section has no 'npm install switchyard ...' line");
  const packages = installLine.replace(/#.*$/, '').trim().split(/\s+/).slice(2);
  const nest11 = /In a Nest 11 app[^`]*`([^`]+)`/.exec(install.replace(/\n/g, ' '));
  if (!nest11) throw new Error("README.md's Install section does not say which versions a Nest 11 app installs");

  const quickStart = codeBlocks(section(markdown, 'Quick start'));
  const files = new Map<string, string>();
  for (const block of quickStart) {
    const path = namedPath(block);
    if (!path) continue;
    if (files.has(path)) throw new Error(`README.md's quick start shows ${path} twice`);
    files.set(path, block.body);
  }
  const shell = quickStart.filter((b) => b.language === 'sh');
  const commands = shell
    .flatMap((b) => b.body.replace(/\\\n\s*/g, '').split('\n'))
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line.startsWith('npx '));
  const runBlock = shell.find((b) => /\bnode dist\//.test(b.body))?.body;
  if (!runBlock) throw new Error("README.md's quick start has no block that runs the apps (node dist/...)");
  return { packages, nest11Versions: nest11[1].split(/\s+/), files, commands, runBlock };
}
