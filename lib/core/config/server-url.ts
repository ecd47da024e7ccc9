import { parseAddress } from '../address.js';
import { InvalidAddressError } from '../errors.js';

/** How a backend wants its server URL. */
export interface ServerUrlRules {
  /** Field name used for `host:port` errors. */
  field: string;
  /** The backend talks TLS: `host:port` becomes https, and http:// is refused. */
  tls: boolean;
  /** Shown in errors, e.g. "http://127.0.0.1:8500". */
  example: string;
  /** Keep a path prefix (an agent behind a reverse proxy); otherwise a path is refused. */
  allowPathPrefix: boolean;
  /** Port when the URL gives none; undefined keeps the scheme's own (80/443). */
  defaultPort?: string;
}

/**
 * Normalises a registry server given as `http(s)://host[:port][/prefix]` or
 * `host:port`, throwing an Error whose message is the expectation (callers
 * wrap it in a ConfigurationError naming their field). Credentials, queries
 * and fragments are refused: credentials belong in the backend's token/auth.
 *
 * @example
 * normalizeServerUrl('127.0.0.1:2379', { field: 'endpoints[0]', tls: false, example: 'http://127.0.0.1:2379', allowPathPrefix: false, defaultPort: '2379' }) // "http://127.0.0.1:2379"
 */
export function normalizeServerUrl(value: unknown, rules: ServerUrlRules): string {
  if (typeof value !== 'string') throw new Error(`a URL such as "${rules.example}"`);
  if (!value.includes('://')) {
    try {
      parseAddress(value, rules.field);
    } catch (error) {
      if (error instanceof InvalidAddressError)
        throw new Error('"http(s)://host:port" or "host:port"', { cause: error });
      throw error;
    }
    return `${rules.tls ? 'https' : 'http'}://${value}`;
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`a URL such as "${rules.example}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('an http:// or https:// URL');
  const hasPath = url.pathname !== '/' && url.pathname !== '';
  if (url.search || url.hash || url.username || url.password || (hasPath && !rules.allowPathPrefix)) {
    throw new Error(
      rules.allowPathPrefix
        ? 'a URL with scheme, host, port and optional path prefix only (no query, fragment or credentials: use backend_config.token)'
        : 'a URL with only scheme, host and port (no path, query or credentials)',
    );
  }
  if (rules.tls && url.protocol === 'http:') throw new Error('an https:// URL, since backend_config.tls is set');
  const host = rules.defaultPort ? `${url.hostname}:${url.port || rules.defaultPort}` : url.host;
  // A path prefix is kept for agents behind a reverse proxy; `/v1/...` follows it.
  const prefix = rules.allowPathPrefix ? url.pathname.replace(/\/+$/, '') : '';
  return `${url.protocol}//${host}${prefix}`;
}
