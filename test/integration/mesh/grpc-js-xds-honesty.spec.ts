import * as grpc from '@grpc/grpc-js';
import { register } from '@grpc/grpc-js-xds';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GreeterServer, greeterPackage, sayHello, type GreeterStub } from '../../support/grpc/greeter.js';
import { waitFor } from '../../support/wait-for.js';
import { XdsControlPlane } from '../../support/xds/xds-control-plane.js';
import {
  apiListener,
  CLUSTER_TYPE,
  edsCluster,
  ENDPOINT_TYPE,
  LISTENER_TYPE,
  loadAssignment,
  ROUTE_TYPE,
  routeConfiguration,
} from '../../support/xds/xds-resources.js';

// gRPC's own xDS client registers the `xds:` scheme process-wide: this file
// stays on its own so no other test shares a process with it.
const BOOTSTRAP_OPTION = 'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config';

/**
 * Before trusting the test control plane with switchyard's ADS client, the
 * reference client (@grpc/grpc-js-xds, LDS -> RDS -> CDS -> EDS) must route
 * real calls to real servers through it.
 */
describe('the test xDS control plane, checked with @grpc/grpc-js-xds', () => {
  let plane: XdsControlPlane;
  const servers: GreeterServer[] = [];
  const stubs: grpc.Client[] = [];

  function xdsStub(target: string): GreeterStub {
    const stub = new greeterPackage.greeter.Greeter(target, grpc.credentials.createInsecure(), {
      [BOOTSTRAP_OPTION]: JSON.stringify(plane.bootstrap('honesty-check')),
    }) as unknown as GreeterStub;
    stubs.push(stub);
    return stub;
  }

  async function answeredBy(stub: GreeterStub, calls: number): Promise<Set<string>> {
    const ids = await Promise.all(Array.from({ length: calls }, () => sayHello(stub, 'mesh').then((r) => r.instance)));
    return new Set(ids);
  }

  beforeAll(async () => {
    register();
    plane = await XdsControlPlane.start();
    for (const id of ['s1', 's2', 's3']) servers.push(await new GreeterServer(id).start());
  });

  afterEach(() => {
    stubs.splice(0).forEach((s) => s.close());
  });

  afterAll(async () => {
    stubs.splice(0).forEach((s) => s.close());
    servers.forEach((s) => s.kill());
    await plane?.close();
  });

  it('routes xds:/// calls (listener with inline routes -> EDS cluster) to exactly the servers it lists, and follows endpoint changes', async () => {
    const [s1, s2, s3] = servers as [GreeterServer, GreeterServer, GreeterServer];
    plane.set(LISTENER_TYPE, apiListener('greeter', { cluster: 'greeter-cluster' }));
    plane.set(CLUSTER_TYPE, edsCluster('greeter-cluster'));
    plane.set(
      ENDPOINT_TYPE,
      loadAssignment('greeter-cluster', [
        { region: 'eu', zone: 'eu-1', endpoints: [{ address: s1.address }, { address: s2.address }] },
      ]),
    );
    const stub = xdsStub('xds:///greeter');

    await waitFor(async () => (await answeredBy(stub, 6)).size === 2, { what: 's1 and s2 answering through xDS' });
    const ids = await answeredBy(stub, 20);
    expect([...ids].sort()).toEqual(['s1', 's2']);
    expect(s3.calls).toBe(0);

    // The control plane moves the cluster to s3 alone: the reference client follows.
    plane.set(
      ENDPOINT_TYPE,
      loadAssignment('greeter-cluster', [{ region: 'eu', zone: 'eu-1', endpoints: [{ address: s3.address }] }]),
    );
    await waitFor(async () => (await sayHello(stub, 'mesh')).instance === 's3', {
      what: 's3 receiving calls after the EDS update',
    });
    expect([...(await answeredBy(stub, 10))]).toEqual(['s3']);

    // The reference client spoke the protocol we record: it subscribed to and ACKed all four types, as its node.
    for (const type of [LISTENER_TYPE, CLUSTER_TYPE, ENDPOINT_TYPE]) {
      const acks = plane.requestsOf('ack', type);
      expect(acks.length, `ACKs of ${type}`).toBeGreaterThan(0);
      expect(acks.every((a) => a.nodeId === 'honesty-check')).toBe(true);
    }
    expect(plane.requestsOf('nack')).toEqual([]);
  });

  it('follows a listener that routes through RDS, and a route change to another cluster', async () => {
    const [s1, s2] = servers as [GreeterServer, GreeterServer, GreeterServer];
    plane.set(CLUSTER_TYPE, edsCluster('left', { serviceName: 'left-endpoints' }));
    plane.set(ENDPOINT_TYPE, loadAssignment('left-endpoints', [{ endpoints: [{ address: s1.address }] }]));
    plane.set(CLUSTER_TYPE, edsCluster('right'));
    plane.set(ENDPOINT_TYPE, loadAssignment('right', [{ endpoints: [{ address: s2.address }] }]));
    plane.set(ROUTE_TYPE, routeConfiguration('greeter-routes', 'left'));
    plane.set(LISTENER_TYPE, apiListener('greeter-rds', { rds: 'greeter-routes' }));
    const stub = xdsStub('xds:///greeter-rds');

    await waitFor(async () => (await sayHello(stub, 'rds')).instance === 's1', {
      what: 'the RDS route to "left" (s1)',
    });
    expect([...(await answeredBy(stub, 10))]).toEqual(['s1']);
    expect(plane.subscribed(ROUTE_TYPE).has('greeter-routes')).toBe(true);

    plane.set(ROUTE_TYPE, routeConfiguration('greeter-routes', 'right'));
    await waitFor(async () => (await sayHello(stub, 'rds')).instance === 's2', {
      what: 'the route moving to "right" (s2)',
    });
    expect([...(await answeredBy(stub, 10))]).toEqual(['s2']);
  });

  it('records the reference client NACKing a resource that does not decode, while calls keep working', async () => {
    const [s1] = servers as [GreeterServer, GreeterServer, GreeterServer];
    plane.set(LISTENER_TYPE, apiListener('greeter-nack', { cluster: 'nack-cluster' }));
    plane.set(CLUSTER_TYPE, edsCluster('nack-cluster'));
    plane.set(ENDPOINT_TYPE, loadAssignment('nack-cluster', [{ endpoints: [{ address: s1.address }] }]));
    const stub = xdsStub('xds:///greeter-nack');
    await waitFor(async () => (await sayHello(stub, 'x')).instance === 's1', { what: 'calls through nack-cluster' });

    const before = plane.requestsOf('nack', ENDPOINT_TYPE).length;
    plane.setEncoded(ENDPOINT_TYPE, 'nack-cluster', {
      type_url: ENDPOINT_TYPE,
      value: Buffer.from([0x0a, 0xff, 0xff]),
    });
    const nack = await waitFor(() => plane.requestsOf('nack', ENDPOINT_TYPE)[before], {
      what: 'the NACK of the undecodable assignment',
    });
    expect(nack.error?.message).toBeTruthy();
    expect((await sayHello(stub, 'x')).instance).toBe('s1');
  });
});
