import * as grpc from '@grpc/grpc-js';
import { describe, expect, it, vi } from 'vitest';
import { EndpointSet } from '../../../../lib/core/endpoint-set.js';
import { createServiceInstance } from '../../../../lib/core/service-instance.js';
import { ChannelPool, channelTarget } from '../../../../lib/transports/grpc/channel-pool.js';

function set(...ports: number[]): EndpointSet {
  return EndpointSet.of(
    's',
    ports.map((port) => createServiceInstance({ service: 's', id: `i${port}`, address: `127.0.0.1:${port}` })),
  );
}

describe('ChannelPool (one cached channel per endpoint)', () => {
  it('holds nothing until first used, then follows the endpoint set', () => {
    const pool = new ChannelPool({ channelLingerMs: 0 });
    const first = set(7001, 7002);
    pool.sync(first);
    expect(pool.size).toBe(0);
    const channel = pool.get(first.endpoints[0], first);
    expect(pool.size).toBe(2);
    expect(pool.get(first.endpoints[0], first)).toBe(channel);
    pool.sync(set(7002, 7003));
    expect(pool.size).toBe(2);
    expect(channel.getConnectivityState(false)).toBe(grpc.connectivityState.SHUTDOWN);
    pool.close();
    expect(() => pool.get(first.endpoints[1], first)).toThrow(/closed/);
  });

  it('keeps a departed endpoint’s channel open for the linger time, and gives it back if the endpoint returns', () => {
    vi.useFakeTimers();
    try {
      const pool = new ChannelPool({ channelLingerMs: 5_000 });
      const both = set(7001, 7002);
      const channel = pool.get(both.endpoints[0], both);
      pool.sync(set(7002));
      expect(channel.getConnectivityState(false)).not.toBe(grpc.connectivityState.SHUTDOWN);
      pool.sync(both);
      expect(pool.get(both.endpoints[0], both)).toBe(channel);
      pool.sync(set(7002));
      vi.advanceTimersByTime(5_001);
      expect(channel.getConnectivityState(false)).toBe(grpc.connectivityState.SHUTDOWN);
      pool.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('always names the address scheme, so a registry record cannot redirect calls to a socket or resolver', () => {
    expect(channelTarget('10.0.0.5:8080')).toBe('ipv4:10.0.0.5:8080');
    expect(channelTarget('[::1]:8080')).toBe('ipv6:[::1]:8080');
    expect(channelTarget('unix:50051')).toBe('dns:unix:50051');
    expect(channelTarget('orders.internal:443')).toBe('dns:orders.internal:443');
  });
});
