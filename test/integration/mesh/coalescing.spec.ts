import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AdsClient } from '../../../lib/registry/mesh/ads-client.js';
import type { MeshLoadAssignment } from '../../../lib/registry/mesh/xds-load-assignment.js';
import {
  loadXdsProtos,
  type DiscoveryRequestMessage,
  type DiscoveryResponseMessage,
  type XdsProtos,
} from '../../../lib/registry/mesh/xds-protos.js';
import { ENDPOINT_RESOURCE } from '../../../lib/registry/mesh/xds-resource-type.js';
import { waitFor } from '../../support/wait-for.js';
import { encodeResource, XdsControlPlane } from '../../support/xds/xds-control-plane.js';
import { CLUSTER_TYPE, edsCluster, ENDPOINT_TYPE, loadAssignment } from '../../support/xds/xds-resources.js';
import { FAST, meshRegistry, RecordingLogger, SetRecorder } from './mesh-test-kit.js';

/** gRPC length-prefixed framing: flag byte (uncompressed), 4-byte length, message. */
function frame(message: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

/**
 * A control plane that does what a busy or naive one does: it queues
 * responses faster than the client applies them. It is plain HTTP/2 so it
 * can hand a whole burst of gRPC messages to the socket in one write: they
 * reach the client together, as a backlog does, with no timing involved.
 */
class BurstPlane {
  readonly requests: DiscoveryRequestMessage[] = [];
  private stream: http2.ServerHttp2Stream | undefined;
  private readonly sessions = new Set<http2.ServerHttp2Session>();

  private constructor(
    private readonly server: http2.Http2Server,
    readonly port: number,
  ) {}

  static async start(protos: XdsProtos): Promise<BurstPlane> {
    const server = http2.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const plane = new BurstPlane(server, (server.address() as AddressInfo).port);
    server.on('session', (session) => {
      plane.sessions.add(session);
      session.on('close', () => plane.sessions.delete(session));
    });
    server.on('stream', (stream, headers) => {
      if (headers[':path'] !== protos.ads.path) {
        stream.respond(
          { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' },
          { endStream: true },
        );
        return;
      }
      plane.stream = stream;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      let pending = Buffer.alloc(0);
      stream.on('data', (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
          const length = pending.readUInt32BE(1);
          plane.requests.push(protos.ads.requestDeserialize(pending.subarray(5, 5 + length)));
          pending = pending.subarray(5 + length);
        }
      });
      stream.on('error', () => undefined);
    });
    return plane;
  }

  get url(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Writes every response in one go, as one buffer. */
  burst(protos: XdsProtos, responses: DiscoveryResponseMessage[]): void {
    this.stream!.write(Buffer.concat(responses.map((r) => frame(protos.ads.responseSerialize(r)))));
  }

  async close(): Promise<void> {
    for (const session of this.sessions) session.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function assignment(cluster: string, port: number) {
  return encodeResource(ENDPOINT_TYPE, loadAssignment(cluster, [{ endpoints: [{ address: `10.0.0.1:${port}` }] }]));
}

function response(version: number, resources: ReturnType<typeof assignment>[]): DiscoveryResponseMessage {
  return { version_info: String(version), resources, type_url: ENDPOINT_TYPE, nonce: `n${version}` };
}

describe('mesh backend: a backlog of ClusterLoadAssignments applies only the newest', () => {
  let protos: XdsProtos;
  let plane: BurstPlane | undefined;
  let ads: AdsClient | undefined;

  beforeAll(async () => {
    protos = await loadXdsProtos();
  });

  afterEach(async () => {
    ads?.close();
    await plane?.close();
  });

  async function connect(): Promise<{ seen: Map<string, number[]>; watch: (name: string) => void }> {
    plane = await BurstPlane.start(protos);
    const client = new AdsClient({
      server: { target: plane.url, secure: false, display: plane.url },
      node: { id: 'burst-test' },
      protos,
      logger: new RecordingLogger(),
      tuning: FAST,
    });
    ads = client;
    const seen = new Map<string, number[]>();
    const watch = (name: string) => {
      seen.set(name, []);
      client.watch(ENDPOINT_RESOURCE, name, {
        onResource: (a: MeshLoadAssignment) => seen.get(name)!.push(...a.endpoints.map((e) => e.port)),
        onDoesNotExist: () => undefined,
        onUnreachable: () => undefined,
      });
    };
    return { seen, watch };
  }

  it('50 queued versions of one cluster: only the last is decoded and applied, and ACKed with its version and nonce', async () => {
    const { seen, watch } = await connect();
    watch('orders');
    await waitFor(() => plane!.requests.length === 1, { what: 'the subscription' });

    plane!.burst(
      protos,
      Array.from({ length: 50 }, (_, k) => response(k + 1, [assignment('orders', 20_001 + k)])),
    );
    const ack = await waitFor(() => plane!.requests[1], { what: 'the answer to the burst' });

    expect(seen.get('orders')).toEqual([20_050]);
    expect(ads!.counters).toEqual({ responses: 50, superseded: 49 });
    // One answer, to the newest response: an ACK of its version (the control plane ignores answers to older nonces).
    expect(plane!.requests).toHaveLength(2);
    expect(ack).toMatchObject({ version_info: '50', response_nonce: 'n50', resource_names: ['orders'] });
    expect(ack.error_detail ?? null).toBeNull();
  });

  it('interleaved clusters and an invalid last copy: each keeps its newest valid version, as applying all in order would', async () => {
    const { seen, watch } = await connect();
    watch('a');
    watch('b');
    await waitFor(() => plane!.requests.some((r) => r.resource_names.length === 2), { what: 'both subscriptions' });
    const before = plane!.requests.length;

    plane!.burst(protos, [
      response(1, [assignment('a', 1)]),
      response(2, [assignment('b', 1)]),
      response(3, [assignment('a', 2)]),
      response(4, [assignment('b', 2)]),
      response(5, [assignment('a', 0)]), // port 0: invalid, NACKed
    ]);
    await waitFor(() => plane!.requests.find((r) => r.response_nonce === 'n5'), { what: 'the answer to the last' });

    // 1, 2 and 3 were never decoded; 3 was, after all, when 5 turned out invalid for 'a'.
    expect(ads!.counters).toEqual({ responses: 5, superseded: 3 });
    expect(seen.get('a')).toEqual([2]);
    expect(seen.get('b')).toEqual([2]);
    const answers = plane!.requests.slice(before);
    expect(answers.map((r) => r.response_nonce)).toEqual(['n4', 'n5']);
    expect(answers[0]).toMatchObject({ version_info: '4' });
    expect(answers[0].error_detail ?? null).toBeNull();
    // The NACK keeps the last version accepted, 4, as a client applying every response would.
    expect(answers[1]).toMatchObject({ version_info: '4', error_detail: { code: 3 } });
    expect(answers[1].error_detail!.message).toMatch(/port 1-65535/);
  });
});

describe('the test control plane under a burst of changes', () => {
  it('sends each changed cluster once when its stream drains, and the client ends on the last assignment', async () => {
    const plane = await XdsControlPlane.start();
    const registry = await meshRegistry({ xdsServer: plane.url, nodeId: 'burst-plane' });
    try {
      plane.set(CLUSTER_TYPE, edsCluster('orders'));
      plane.set(ENDPOINT_TYPE, loadAssignment('orders', [{ endpoints: [{ address: '10.0.0.1:30000' }] }]));
      const orders = new SetRecorder(registry.watch({ service: 'orders' }));
      await waitFor(() => orders.latest?.size === 1, { what: 'the first set' });
      await waitFor(() => plane.settled(ENDPOINT_TYPE), { what: 'the first assignment ACKed' });
      const sentBefore = plane.responses.filter((r) => r.typeUrl === ENDPOINT_TYPE).length;

      // 200 changes in one go: the first is sent; the others wait for its write and its ACK, and merge.
      for (let k = 1; k <= 200; k++)
        plane.set(ENDPOINT_TYPE, loadAssignment('orders', [{ endpoints: [{ address: `10.0.0.1:${30_000 + k}` }] }]));
      await waitFor(() => orders.addresses().join() === '10.0.0.1:30200', { what: 'the last assignment' });
      await waitFor(() => plane.settled(ENDPOINT_TYPE), { what: 'the last response answered' });

      const sent = plane.responses.filter((r) => r.typeUrl === ENDPOINT_TYPE).slice(sentBefore);
      expect(sent.length).toBeLessThan(200);
      const last = plane.requests.filter((r) => r.typeUrl === ENDPOINT_TYPE).at(-1)!;
      expect(last).toMatchObject({ kind: 'ack', nonce: sent.at(-1)!.nonce, versionInfo: sent.at(-1)!.versionInfo });
      expect(plane.requestsOf('nack')).toEqual([]);
      orders.unsubscribe();
    } finally {
      await registry.close();
      await plane.close();
    }
  });
});
