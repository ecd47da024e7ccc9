/**
 * Header lookups on what undici's Dispatcher API carries: request headers
 * as a record, a flat `[name, value, ...]` array or an iterable of pairs;
 * response headers as a flat array of Buffers. Names compare
 * case-insensitively; nothing is allocated when the header is absent from a
 * record (the common case on every request).
 */

/** The value of request header `name` (lower case), or undefined. */
export function requestHeader(headers: unknown, name: string): string | undefined {
  if (headers === null || headers === undefined) return undefined;
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) return fromPairs(headers as Iterable<unknown[]>, name);
    for (let i = 0; i + 1 < headers.length; i += 2) {
      if (String(headers[i]).toLowerCase() === name) return text(headers[i + 1]);
    }
    return undefined;
  }
  if (typeof headers !== 'object') return undefined;
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    return fromPairs(headers as Iterable<unknown[]>, name);
  }
  const record = headers as Record<string, unknown>;
  const direct = record[name];
  if (direct !== undefined) return text(direct);
  for (const key in record) if (key.toLowerCase() === name) return text(record[key]);
  return undefined;
}

/** The value of response header `name` (lower case) in undici's raw `[name, value, ...]` Buffers. */
export function rawHeader(rawHeaders: readonly unknown[] | null | undefined, name: string): string | undefined {
  if (!rawHeaders) return undefined;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const key = rawHeaders[i];
    const keyText = typeof key === 'string' ? key : String(key);
    if (keyText.length === name.length && keyText.toLowerCase() === name) return text(rawHeaders[i + 1]);
  }
  return undefined;
}

function fromPairs(pairs: Iterable<unknown[]>, name: string): string | undefined {
  for (const pair of pairs) if (String(pair[0]).toLowerCase() === name) return text(pair[1]);
  return undefined;
}

function text(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.length ? text(value[0]) : undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  // Buffers (undici's raw headers) and anything else with a toString of its own.
  return (value as { toString(): string }).toString();
}
