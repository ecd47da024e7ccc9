import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '../../..');

/** The tarball `npm pack` made, as npm describes it. */
export interface PackedTarball {
  path: string;
  /** Bytes, packed and unpacked. */
  size: number;
  unpackedSize: number;
  /** Paths inside the package (no `package/` prefix). */
  files: string[];
}

/**
 * Builds what the tarball ships (the prepack build) and packs it into
 * `destination`. The build runs first, then `npm pack --ignore-scripts`,
 * so npm's JSON answer is all npm pack prints.
 */
export function packTarball(destination: string): PackedTarball {
  execFileSync(process.execPath, [join(ROOT, 'scripts/build.mjs'), '--package'], { cwd: ROOT, stdio: 'pipe' });
  const [packed] = JSON.parse(
    execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', destination], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  ) as Array<{ filename: string; size: number; unpackedSize: number; files: Array<{ path: string }> }>;
  return {
    path: join(destination, packed.filename),
    size: packed.size,
    unpackedSize: packed.unpackedSize,
    files: packed.files.map((f) => f.path),
  };
}
