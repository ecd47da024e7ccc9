import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');

describe('the repository', () => {
  it('holds no leftover merge conflict markers in any tracked file', () => {
    let found = '';
    try {
      found = execFileSync(
        'git',
        ['grep', '-n', '-I', '-E', '^(<<<<<<< |>>>>>>> )', '--', '.', ':!test/unit/no-conflict-markers.spec.ts'],
        {
          cwd: ROOT,
          encoding: 'utf8',
        },
      );
    } catch (error) {
      // git grep exits 1 when nothing matches.
      if ((error as { status?: number }).status !== 1) throw error;
    }
    expect(found).toBe('');
  });
});
