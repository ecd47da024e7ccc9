import type { Dispatcher } from 'undici';

/** The callback-style dispatch handler undici 7 drives internally (and Node's built-in fetch passes). */
export interface LegacyHandler {
  onConnect?(abort: (reason?: Error) => void, context?: unknown): void;
  onResponseStarted?(): void;
  onHeaders?(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean;
  onData?(chunk: Buffer): boolean;
  onComplete?(trailers: string[] | Buffer[] | null): void;
  onError?(error: Error): void;
  onUpgrade?(statusCode: number, rawHeaders: Buffer[] | string[] | null, socket: unknown): void;
  onBodySent?(chunkSize: number, totalBytesSent: number): void;
  onRequestSent?(): void;
}

/**
 * A handler as this transport drives it. Node's built-in fetch and undici
 * 7 pass callback-style handlers; undici 8's fetch passes controller-style
 * ones (`onRequestStart` ...), which are adapted here so the dispatcher
 * works with every fetch a user may hold.
 */
export function asLegacyHandler(handler: Dispatcher.DispatchHandler): LegacyHandler {
  return typeof handler.onRequestStart === 'function' ? new ControllerStyleHandler(handler) : handler;
}

/** Drives a controller-style handler from callback-style events; it is its own controller. */
class ControllerStyleHandler implements LegacyHandler {
  private abortRequest: ((reason?: Error) => void) | undefined;
  private resumeResponse: (() => void) | undefined;
  private isPaused = false;
  private abortReason: Error | null = null;

  constructor(private readonly handler: Dispatcher.DispatchHandler) {}

  get aborted(): boolean {
    return this.abortReason !== null;
  }

  get paused(): boolean {
    return this.isPaused;
  }

  get reason(): Error | null {
    return this.abortReason;
  }

  abort(reason: Error): void {
    if (this.abortReason !== null) return;
    this.abortReason = reason;
    this.abortRequest?.(reason);
  }

  pause(): void {
    this.isPaused = true;
  }

  resume(): void {
    if (!this.isPaused) return;
    this.isPaused = false;
    this.resumeResponse?.();
  }

  onConnect(abort: (reason?: Error) => void, context?: unknown): void {
    this.abortRequest = abort;
    this.handler.onRequestStart?.(this, context);
  }

  onResponseStarted(): void {
    this.handler.onResponseStarted?.();
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    this.resumeResponse = resume;
    this.handler.onResponseStart?.(this, statusCode, headerRecord(rawHeaders), statusText);
    return !this.isPaused;
  }

  onData(chunk: Buffer): boolean {
    this.handler.onResponseData?.(this, chunk);
    return !this.isPaused;
  }

  onComplete(trailers: string[] | Buffer[] | null): void {
    this.handler.onResponseEnd?.(this, headerRecord(trailers));
  }

  onError(error: Error): void {
    this.handler.onResponseError?.(this, error);
  }

  onUpgrade(statusCode: number, rawHeaders: Buffer[] | string[] | null, socket: unknown): void {
    this.handler.onRequestUpgrade?.(this, statusCode, headerRecord(rawHeaders), socket as never);
  }
}

/** Raw `[name, value, ...]` headers as a record (repeated names become arrays). */
function headerRecord(raw: ReadonlyArray<string | Buffer> | null): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  if (!raw) return out;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toString().toLowerCase();
    const value = raw[i + 1].toString();
    const existing = out[name];
    if (existing === undefined) out[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else out[name] = [existing, value];
  }
  return out;
}
