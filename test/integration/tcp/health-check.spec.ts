import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Discovery, type DiscoveryEvent } from '../../../lib/index.js';
import { waitFor } from '../../support/wait-for.js';
import { quietLogger, TcpServers, type TcpServer } from './support/tcp-kit.js';

describe("active health checks of kind 'tcp' (connect and close) on Nest TCP microservices", () => {
  let servers: TcpServers;
  let discovery: Discovery;
  const checks: Array<Extract<DiscoveryEvent, { type: 'health-check' }>> = [];

  beforeAll(async () => {
    servers = await TcpServers.create();
    discovery = await Discovery.create(
      {
        backend: 'local',
        backendConfig: { dir: servers.dir },
        loadBalance: 'round_robin',
        // 250 ms between checks, 200 ms timeout, the seed's thresholds (3 / 2); no passive ejection.
        healthCheck: {
          enabled: true,
          kind: 'tcp',
          interval: 0.25,
          timeout: 0.2,
          failureThreshold: 3,
          successThreshold: 2,
        },
        outlierDetection: { enabled: false },
      },
      { logger: quietLogger },
    );
    discovery.events$.subscribe((e) => e.type === 'health-check' && checks.push(e));
  });

  afterAll(async () => {
    await discovery?.close();
    await servers?.stop();
  });

  it('an instance whose port stops accepting leaves the served set after 3 failed checks, and returns after 2 passes', async () => {
    const started: TcpServer[] = await Promise.all(
      ['h1', 'h2', 'h3'].map((id) => servers.start(id, { env: { TTL: '60' } })),
    );
    const client = discovery.client('orders');
    await client.ready({ minEndpoints: 3, timeoutMs: 20_000 });
    const victim = started[0];
    await waitFor(() => checks.some((c) => c.address === victim.address && c.ok), { what: 'a passing tcp check' });
    expect(checks.find((c) => c.address === victim.address)).toMatchObject({ kind: 'tcp', ok: true, healthy: true });

    // A crash: the registration stays (TTL 60 s), the port refuses connections.
    await victim.peer.kill();
    await waitFor(() => client.snapshot().size === 2, { what: 'the victim out of the served set' });
    const failing = checks.filter((c) => c.address === victim.address && !c.ok);
    expect(failing.slice(0, 3).map((c) => [c.healthy, c.changed])).toEqual([
      [true, false],
      [true, false],
      [false, true],
    ]);
    expect(failing[0].detail).toBe('ECONNREFUSED');
    expect(client.describeEndpoints().find((e) => e.endpoint.address === victim.address)).toMatchObject({
      served: false,
      health: 'unhealthy',
    });

    const before = checks.length;
    await servers.start('h1', { env: { TTL: '60' }, port: victim.port });
    await waitFor(() => client.snapshot().size === 3, { what: 'the victim back in the served set' });
    const passing = checks.slice(before).filter((c) => c.address === victim.address && c.ok);
    expect(passing.find((c) => c.changed)).toMatchObject({ healthy: true });
    expect(passing.findIndex((c) => c.changed)).toBeGreaterThanOrEqual(1);
  });
});
