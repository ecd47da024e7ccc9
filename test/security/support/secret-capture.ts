import { vi, type MockInstance } from 'vitest';
import type { DiscoveryLogger } from '../../../lib/registry/registry.interface.js';

/**
 * Everything a run could show an operator: logger lines, console output
 * (the default logger writes there), error messages and endpoint-set
 * reasons. Tests provoke failures, then assert no secret is in any of it.
 *
 * @example
 * const capture = new SecretCapture(); ...; capture.expectFree(['my-token']);
 */
export class SecretCapture implements DiscoveryLogger {
  readonly texts: string[] = [];
  private readonly spies: MockInstance[] = [];

  log(message: string): void {
    this.texts.push(`log ${message}`);
  }
  warn(message: string): void {
    this.texts.push(`warn ${message}`);
  }
  error(message: string): void {
    this.texts.push(`error ${message}`);
  }
  debug(message: string): void {
    this.texts.push(`debug ${message}`);
  }

  /** Also records console.* output (the consoleLogger fallback, libraries that print). */
  captureConsole(): this {
    for (const method of ['log', 'warn', 'error', 'info', 'debug'] as const) {
      this.spies.push(
        vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
          this.texts.push(`console.${method} ${args.map(String).join(' ')}`);
        }),
      );
    }
    return this;
  }

  /** Records an error (message, stack, cause chain and own fields) or any text. */
  note(value: unknown): void {
    if (value instanceof Error) {
      let error: unknown = value;
      for (let depth = 0; error instanceof Error && depth < 5; depth++) {
        this.texts.push(`thrown ${error.name}: ${error.message}\n${error.stack ?? ''}\n${safeJson(error)}`);
        error = error.cause;
      }
    } else if (value !== undefined) {
      this.texts.push(`value ${typeof value === 'string' ? value : safeJson(value)}`);
    }
  }

  /** Runs `fn` and records what it throws (returns undefined then). */
  async attempt<T>(fn: () => Promise<T> | T): Promise<T | undefined> {
    try {
      return await fn();
    } catch (error) {
      this.note(error);
      return undefined;
    }
  }

  /** Lines containing any of the secrets (empty when the run was clean). */
  leaks(secrets: readonly string[]): string[] {
    return this.texts
      .filter((text) => secrets.some((secret) => secret.length > 0 && text.includes(secret)))
      .map((t) => t.slice(0, 300));
  }

  restoreConsole(): void {
    for (const spy of this.spies.splice(0)) spy.mockRestore();
  }
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    return '';
  }
}

/** The lines of a PEM body (base64), each long enough to be unmistakable. */
export function pemBodyLines(pem: string): string[] {
  return pem
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length >= 16 && !line.startsWith('-----'));
}
