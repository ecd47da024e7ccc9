import { describe, expect, it } from 'vitest';
import { Agent } from 'undici';
import { Discovery } from '../../../../lib/index.js';
import { EndpointAvoidance } from '../../../../lib/client/endpoint-avoidance.js';
import { EndpointSet } from '../../../../lib/core/endpoint-set.js';
import { createServiceInstance } from '../../../../lib/core/service-instance.js';
import { rawHeader, requestHeader } from '../../../../lib/transports/http/dispatch-headers.js';
import { hostOfOrigin } from '../../../../lib/transports/http/http-client-transport.js';
import { asLegacyHandler } from '../../../../lib/transports/http/legacy-handler.js';

describe('what the HTTP dispatcher reads', () => {
  it('finds the host of an origin', () => {
    expect(hostOfOrigin('http://orders')).toBe('orders');
    expect(hostOfOrigin('https://Orders:8443')).toBe('orders');
    expect(hostOfOrigin('http://orders.svc.discovery/')).toBe('orders.svc.discovery');
    expect(hostOfOrigin('http://[::1]:80')).toBe('[::1]');
    expect(hostOfOrigin(new URL('http://payments:81/x'))).toBe('payments');
  });

  it('reads a request header from every shape undici passes', () => {
    expect(requestHeader({ 'x-hash-key': 'k1' }, 'x-hash-key')).toBe('k1');
    expect(requestHeader({ 'X-Hash-Key': 'k2' }, 'x-hash-key')).toBe('k2');
    expect(requestHeader(['accept', '*/*', 'X-HASH-KEY', 'k3'], 'x-hash-key')).toBe('k3');
    expect(requestHeader([['x-hash-key', 'k4']], 'x-hash-key')).toBe('k4');
    expect(requestHeader(new Map([['x-hash-key', 'k5']]), 'x-hash-key')).toBe('k5');
    expect(requestHeader({ 'x-hash-key': ['k6', 'k7'] }, 'x-hash-key')).toBe('k6');
    expect(requestHeader({ accept: '*/*' }, 'x-hash-key')).toBeUndefined();
    expect(requestHeader(null, 'x-hash-key')).toBeUndefined();
  });

  it('reads a response header from raw Buffers', () => {
    const raw = [Buffer.from('Content-Type'), Buffer.from('text/plain'), Buffer.from('Retry-After'), Buffer.from('2')];
    expect(rawHeader(raw, 'retry-after')).toBe('2');
    expect(rawHeader(raw, 'etag')).toBeUndefined();
  });

  it('drives a controller-style handler (undici 8 fetch) from callback-style events', () => {
    const seen: string[] = [];
    let controller: { pause(): void; resume(): void; abort(e: Error): void } | undefined;
    const legacy = asLegacyHandler({
      onRequestStart: (c) => {
        controller = c;
        seen.push('start');
      },
      onResponseStart: (_c, status, headers) => seen.push(`headers ${status} ${String(headers['retry-after'])}`),
      onResponseData: (c, chunk) => {
        seen.push(`data ${chunk.toString()}`);
        c.pause();
      },
      onResponseEnd: (_c, trailers) => seen.push(`end ${Object.keys(trailers).length}`),
      onResponseError: (_c, error) => seen.push(`error ${error.message}`),
    });
    const aborted: Error[] = [];
    legacy.onConnect?.((reason) => reason && aborted.push(reason));
    expect(legacy.onHeaders?.(429, [Buffer.from('Retry-After'), Buffer.from('1')], () => undefined, 'Too Many')).toBe(
      true,
    );
    expect(legacy.onData?.(Buffer.from('x'))).toBe(false);
    legacy.onComplete?.(null);
    controller?.abort(new Error('stop'));
    legacy.onError?.(new Error('late'));
    expect(seen).toEqual(['start', 'headers 429 1', 'data x', 'end 0', 'error late']);
    expect(aborted.map((e) => e.message)).toEqual(['stop']);
  });

  it('passes a callback-style handler through unchanged', () => {
    const handler = { onError: () => undefined };
    expect(asLegacyHandler(handler)).toBe(handler);
  });
});

describe('EndpointAvoidance', () => {
  it('avoids until the time asked, keeps the later time, forgets what expired or left', () => {
    const avoidance = new EndpointAvoidance();
    avoidance.avoid('a', 1_000);
    avoidance.avoid('a', 500);
    expect(avoidance.avoids('a', 999)).toBe(true);
    expect(avoidance.avoidedUntil('a', 0)).toBe(1_000);
    expect(avoidance.avoids('a', 1_000)).toBe(false);
    expect(avoidance.size).toBe(0);
    avoidance.avoid('b', 10_000);
    const instance = createServiceInstance({ service: 's', address: '127.0.0.1:1', id: 'c' });
    avoidance.retain(EndpointSet.initial('s').next([instance]));
    expect(avoidance.size).toBe(0);
  });
});

describe('discovery.httpDispatcher()', () => {
  it('is made once per option set (a custom fallback gets its own), and closed with the Discovery', async () => {
    const discovery = await Discovery.create({ backend: 'memory' }, { logger: { log() {}, warn() {}, error() {} } });
    const fallback = new Agent();
    try {
      expect(discovery.httpDispatcher()).toBe(discovery.httpDispatcher({}));
      expect(discovery.httpDispatcher({ services: ['b', 'a'] })).toBe(
        discovery.httpDispatcher({ services: ['a', 'b'] }),
      );
      expect(discovery.httpDispatcher({ fallback: true })).not.toBe(discovery.httpDispatcher());
      expect(discovery.httpDispatcher({ fallback })).not.toBe(discovery.httpDispatcher({ fallback }));
    } finally {
      await discovery.close();
      await fallback.close();
    }
    expect(() => discovery.httpDispatcher()).toThrow('discovery is closed');
  });
});
