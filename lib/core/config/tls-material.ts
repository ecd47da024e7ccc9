import { readFileSync } from 'node:fs';
import type { ConfigIssue } from '../errors.js';

/** The `tls` table of a backend: each entry inline PEM text or a file path. */
export interface TlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

/** PEM bytes of the CA, client certificate and key (undefined where not given or unreadable). */
export interface TlsMaterial {
  ca: Buffer | undefined;
  cert: Buffer | undefined;
  key: Buffer | undefined;
}

/**
 * Reads a backend's TLS files (or inline PEM, both common in deployment
 * tooling), adding an issue per problem: a certificate without its key (or
 * the reverse), an unreadable file. Shared by the etcd and Consul backends.
 *
 * @example
 * const material = loadTlsMaterial(raw.tls, (f) => `backend_config.${f}`, issues);
 */
export function loadTlsMaterial(tls: TlsFiles, path: (field: string) => string, issues: ConfigIssue[]): TlsMaterial {
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    const missing = tls.cert === undefined ? 'cert' : 'key';
    issues.push({
      path: path(`tls.${missing}`),
      message: 'a client certificate and its key are given together (one of them is missing)',
    });
  }
  const load = (name: keyof TlsFiles): Buffer | undefined => {
    const value = tls[name];
    if (value === undefined) return undefined;
    if (value.includes('-----BEGIN')) return Buffer.from(value);
    try {
      return readFileSync(value);
    } catch (error) {
      issues.push({
        path: path(`tls.${name}`),
        value,
        message: `a readable PEM file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      });
      return undefined;
    }
  };
  return { ca: load('ca'), cert: load('cert'), key: load('key') };
}
