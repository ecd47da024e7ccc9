import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const LIB = join(import.meta.dirname, '../../lib');

/** ARCHITECTURE.md's layers, inner to outer; a file may import its own layer and inner ones only. */
const LAYERS: Record<string, number> = {
  core: 1,
  registry: 2,
  balancing: 3,
  health: 4,
  client: 5,
  transports: 6,
  discovery: 7,
  nest: 8,
  admin: 8,
  cli: 8,
};

/** The one sanctioned exception: core's configuration loader composes each backend's schema (pure zod, no I/O). */
const ALLOWED = [/^core\/config\/.*$/, /^registry\/[^/]+\/[^/]+\.schema\.ts$/] as const;

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? files(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

function layerOf(file: string): number | undefined {
  return LAYERS[relative(LIB, file).split(sep)[0]];
}

describe('the layers of lib/', () => {
  it('has one folder per layer and nothing else but the entry points', () => {
    const top = readdirSync(LIB, { withFileTypes: true });
    expect(
      top
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
        .sort(),
    ).toEqual(Object.keys(LAYERS).sort());
    expect(
      top
        .filter((e) => e.isFile())
        .map((e) => e.name)
        .sort(),
    ).toEqual(['index.ts', 'testing.ts']);
  });

  it('never lets an inner layer import an outer one', () => {
    const violations: string[] = [];
    for (const file of files(LIB)) {
      const from = layerOf(file);
      if (from === undefined) continue;
      const source = readFileSync(file, 'utf8');
      for (const match of source.matchAll(/(?:import|export)[^'"]*?from '(\.[^']+)'|import\('(\.[^']+)'\)/g)) {
        const target = resolve(file, '..', (match[1] ?? match[2]).replace(/\.js$/, '.ts'));
        const to = layerOf(target);
        if (to === undefined || to <= from) continue;
        const [fromPath, toPath] = [relative(LIB, file), relative(LIB, target)].map((p) => p.split(sep).join('/'));
        if (ALLOWED[0].test(fromPath) && ALLOWED[1].test(toPath)) continue;
        violations.push(`${fromPath} -> ${toPath}`);
      }
    }
    expect(violations).toEqual([]);
  });
});
