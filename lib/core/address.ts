import { InvalidAddressError } from './errors.js';
import { isIP } from 'node:net';

/** A parsed `host:port`. `host` never carries IPv6 brackets. */
export interface HostPort {
  host: string;
  port: number;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$/;

/**
 * Parses `host:port`; IPv6 hosts must be bracketed (`[::1]:50051`).
 * Anything else (a URL, `unix:` path, missing or out-of-range port) throws
 * {@link InvalidAddressError} naming the value.
 */
export function parseAddress(value: unknown, field = 'address'): HostPort {
  if (typeof value !== 'string' || value.length === 0 || value.length > 300) {
    throw new InvalidAddressError(value, field);
  }
  let host: string;
  let portText: string;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close < 0 || value[close + 1] !== ':') throw new InvalidAddressError(value, field);
    host = value.slice(1, close);
    portText = value.slice(close + 2);
    if (isIP(host) !== 6) throw new InvalidAddressError(value, field);
  } else {
    const colon = value.lastIndexOf(':');
    if (colon <= 0) throw new InvalidAddressError(value, field);
    host = value.slice(0, colon);
    portText = value.slice(colon + 1);
    if (host.includes(':')) throw new InvalidAddressError(value, field);
    if (isIP(host) !== 4 && !HOSTNAME.test(host)) throw new InvalidAddressError(value, field);
  }
  if (!/^\d{1,5}$/.test(portText)) throw new InvalidAddressError(value, field);
  const port = Number(portText);
  if (port < 1 || port > 65535) throw new InvalidAddressError(value, field);
  return { host, port };
}

/** Formats a host and port as `host:port`, bracketing IPv6 hosts. */
export function formatAddress(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
