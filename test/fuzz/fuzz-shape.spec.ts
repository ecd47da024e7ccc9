import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
// TypeScript 7 ships no JavaScript API; TypeScript 6 (the lint's copy) parses the same syntax.
import ts from 'typescript-for-eslint';
import { describe, expect, it } from 'vitest';

/*
 * The shape every fuzz property keeps: inside a `try` there is exactly one
 * statement (the call of the code under test) and no assertion, so a failed
 * `expect` always propagates to fast-check and can never be caught as "the
 * decoder refused this input". Checked on the source, so a new property with
 * the old shape fails here before it can pass vacuously.
 */
const FUZZ_DIR = import.meta.dirname;
const ROOT = join(FUZZ_DIR, '../..');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourceFiles(join(dir, entry.name))
      : entry.name.endsWith('.ts')
        ? [join(dir, entry.name)]
        : [],
  );
}

/** Calls whose failure is an assertion: `expect(...)`, `expect(...).toX()`, `assert*()` and the suite's `check*()` helpers. */
function isAssertion(call: ts.CallExpression): boolean {
  let callee: ts.Expression = call.expression;
  while (ts.isPropertyAccessExpression(callee) || ts.isCallExpression(callee))
    callee = ts.isPropertyAccessExpression(callee) ? callee.expression : callee.expression;
  return ts.isIdentifier(callee) && /^(expect|assert|check)/.test(callee.text);
}

/** Every `try` block in `text` that holds more than one statement or an assertion, as "file:line why". */
export function badTryBlocks(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const problems: string[] = [];
  const where = (node: ts.Node) =>
    `${relative(ROOT, file)}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
  const visit = (node: ts.Node): void => {
    if (ts.isTryStatement(node)) {
      const statements = node.tryBlock.statements;
      if (statements.length !== 1) problems.push(`${where(node)} try holds ${statements.length} statements`);
      const findAssertions = (inner: ts.Node): void => {
        if (ts.isCallExpression(inner) && isAssertion(inner))
          problems.push(`${where(inner)} assertion inside try: ${inner.getText(source).split('\n')[0].slice(0, 60)}`);
        else ts.forEachChild(inner, findAssertions);
      };
      findAssertions(node.tryBlock);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return problems;
}

describe('fuzz suite shape', () => {
  it('keeps every try block in test/fuzz to the one call under test, with no assertion inside', () => {
    const files = sourceFiles(FUZZ_DIR);
    expect(files.length).toBeGreaterThan(5);
    expect(files.flatMap((file) => badTryBlocks(file, readFileSync(file, 'utf8')))).toEqual([]);
  });

  it('flags the shape that let the instance-file property pass on a broken decoder', () => {
    // The property as it was before this check existed (test/fuzz/record-decoders.fuzz.spec.ts).
    const old = `
      fc.property(content, (fileText) => {
        try {
          const entry = decodeInstanceFile(fileText, { mtimeMs: 1, defaultTtlMs: 90_000 });
          checkInstance(entry.instance);
          expect(Number.isFinite(entry.expiresAt)).toBe(true);
        } catch (error) {
          if (isCrash(error)) throw error;
        }
      });`;
    expect(badTryBlocks(join(FUZZ_DIR, 'old.ts'), old)).toEqual([
      'test/fuzz/old.ts:3 try holds 3 statements',
      'test/fuzz/old.ts:5 assertion inside try: checkInstance(entry.instance)',
      'test/fuzz/old.ts:6 assertion inside try: expect(Number.isFinite(entry.expiresAt)).toBe(true)',
    ]);
  });
});
