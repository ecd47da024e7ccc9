// The driver of the test Kubernetes API server: start, stop, restart, REST writes, kubeconfigs
// and fault controls kept together, so a test needs one import (hence a little over 300 lines).
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canConnect, findFreePort } from '../../../lib/core/tcp.js';
import { makeTlsMaterial, type TlsMaterial } from '../../integration/consul/support/tls-material.js';
import { PeerProcess } from '../peers/peer-process.js';

const SERVER_SCRIPT = join(import.meta.dirname, 'api-server-process.mjs');
export const ADMIN_TOKEN = 'admin-token';

/** An RBAC rule of the test server: verbs on endpointslices in these namespaces (`'*'`: all). */
export interface ApiRule {
  verbs: string[];
  namespaces: string[] | '*';
}

/** A user of the test server: its bearer tokens (a client certificate's CN also names a user) and rules. */
export interface ApiUser {
  tokens?: string[];
  rules: ApiRule[];
}

/** One request the server saw. */
export interface SeenRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  user: string | null;
  status: number;
}

export interface KubernetesApiOptions {
  /** Serve HTTPS with a throw-away CA (default true). */
  tls?: boolean;
  users?: Record<string, ApiUser>;
  bookmarkIntervalMs?: number;
  /** How a watch from a compacted resourceVersion is refused: an ERROR event (default, like the watch cache) or HTTP 410. */
  goneAs?: 'event' | 'status';
}

/** One endpoint of {@link endpointSlice}. */
export interface SliceEndpoint {
  address: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
  zone?: string;
  nodeName?: string;
  pod?: string;
}

/**
 * A discovery.k8s.io/v1 EndpointSlice of `service`, as the EndpointSlice
 * controller writes them.
 *
 * @example
 * await api.apply(endpointSlice({ service: 'orders', name: 'orders-a', ports: [{ name: 'grpc', port: 50051 }], endpoints: [{ address: '127.0.0.1' }] }));
 */
export function endpointSlice(spec: {
  service: string;
  name: string;
  namespace?: string;
  addressType?: string;
  ports: Array<{ name?: string; port: number }>;
  endpoints: SliceEndpoint[];
}): Record<string, unknown> {
  return {
    kind: 'EndpointSlice',
    apiVersion: 'discovery.k8s.io/v1',
    metadata: {
      name: spec.name,
      namespace: spec.namespace ?? 'default',
      labels: { 'kubernetes.io/service-name': spec.service, 'endpointslice.kubernetes.io/managed-by': 'test' },
    },
    addressType: spec.addressType ?? 'IPv4',
    ports: spec.ports.map((p) => ({
      ...(p.name !== undefined ? { name: p.name } : {}),
      port: p.port,
      protocol: 'TCP',
    })),
    endpoints: spec.endpoints.map((e) => ({
      addresses: [e.address],
      conditions: {
        ready: e.ready ?? true,
        serving: e.serving ?? e.ready ?? true,
        terminating: e.terminating ?? false,
      },
      ...(e.zone ? { zone: e.zone } : {}),
      ...(e.nodeName ? { nodeName: e.nodeName } : {}),
      ...(e.pod ? { targetRef: { kind: 'Pod', name: e.pod, namespace: spec.namespace ?? 'default' } } : {}),
    })),
  };
}

/**
 * The test Kubernetes API server (api-server-process.mjs) in its own
 * process on a free loopback port, with a throw-away CA: tests change
 * EndpointSlices through its REST API (as the EndpointSlice controller
 * does), inject faults through its /__test/ controls, stall it with
 * SIGSTOP and restart it on the same port with its state.
 *
 * @example
 * const api = await KubernetesApiPeer.start({ users: { client: { tokens: ['t1'], rules: [{ verbs: ['list', 'watch'], namespaces: ['shop'] }] } } });
 */
export class KubernetesApiPeer {
  private peer: PeerProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly dir: string,
    readonly tls: TlsMaterial | undefined,
    private readonly options: KubernetesApiOptions,
  ) {}

  static async start(options: KubernetesApiOptions = {}): Promise<KubernetesApiPeer> {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-k8s-api-'));
    const tls = options.tls === false ? undefined : makeTlsMaterial();
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const peer = new KubernetesApiPeer(await findFreePort(), dir, tls, options);
      try {
        await peer.launch();
        return peer;
      } catch (error) {
        lastError = error;
      }
    }
    tls?.remove();
    rmSync(dir, { recursive: true, force: true });
    throw lastError;
  }

  get url(): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  get caFile(): string | undefined {
    return this.tls?.caFile;
  }

  /** The folder tests may write token and kubeconfig files into (removed on stop). */
  get workDir(): string {
    return this.dir;
  }

  /** Writes a kubeconfig for this server and returns its path. */
  writeKubeconfig(
    file: string,
    user: { token?: string; tokenFile?: string; clientCert?: boolean },
    extra: { namespace?: string; context?: string; otherContexts?: boolean } = {},
  ): string {
    const path = join(this.dir, file);
    const context = extra.context ?? 'test';
    const userEntry: Record<string, unknown> = {};
    if (user.token) userEntry.token = user.token;
    if (user.tokenFile) userEntry.tokenFile = user.tokenFile;
    if (user.clientCert && this.tls) {
      userEntry['client-certificate'] = this.tls.clientCert;
      userEntry['client-key'] = this.tls.clientKey;
    }
    const cluster: Record<string, unknown> = { server: this.url };
    if (this.tls) cluster['certificate-authority-data'] = readFileSync(this.tls.caFile).toString('base64');
    const doc = {
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': context,
      clusters: [
        { name: 'test-cluster', cluster },
        ...(extra.otherContexts ? [{ name: 'elsewhere', cluster: { server: 'https://127.0.0.1:1' } }] : []),
      ],
      users: [{ name: 'test-user', user: userEntry }],
      contexts: [
        {
          name: context,
          context: {
            cluster: 'test-cluster',
            user: 'test-user',
            ...(extra.namespace ? { namespace: extra.namespace } : {}),
          },
        },
        ...(extra.otherContexts ? [{ name: 'elsewhere', context: { cluster: 'elsewhere', user: 'test-user' } }] : []),
      ],
    };
    writeFileSync(path, JSON.stringify(doc, null, 2));
    return path;
  }

  /** Creates or replaces a slice (as the EndpointSlice controller would). */
  async apply(slice: Record<string, unknown>): Promise<Record<string, unknown>> {
    const { namespace, name } = slice.metadata as { namespace: string; name: string };
    const base = `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`;
    const existing = await this.call('GET', `${base}/${name}`);
    const answer =
      existing.status === 404
        ? this.expect(await this.call('POST', base, slice), [201])
        : this.expect(await this.call('PUT', `${base}/${name}`, slice), [200]);
    return answer as Record<string, unknown>;
  }

  async remove(namespace: string, name: string): Promise<void> {
    this.expect(
      await this.call('DELETE', `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices/${name}`),
      [200],
    );
  }

  /** Drops the watch history: a later watch from an older resourceVersion gets 410 Gone. */
  async compact(): Promise<void> {
    this.expect(await this.call('POST', '/__test/compact', {}), [200]);
  }

  /** Ends open watches: cleanly (`timeout`), by resetting the connection (`cut`), or with an ERROR 410 (`gone`). */
  async endWatches(how: 'timeout' | 'cut' | 'gone', user?: string): Promise<number> {
    return (
      (await this.expect(await this.call('POST', '/__test/end-watches', { how, user }), [200])) as { ended: number }
    ).ended;
  }

  /** Adds or replaces users (tokens, rules). */
  async setUsers(users: Record<string, ApiUser>): Promise<void> {
    this.expect(await this.call('POST', '/__test/users', users), [200]);
  }

  /** Every request the server saw (up to the last 5 000). */
  async requests(): Promise<SeenRequest[]> {
    return (await this.expect(await this.call('GET', '/__test/requests'), [200])) as SeenRequest[];
  }

  /** Open watches, by user. */
  async openWatches(): Promise<Array<{ user: string }>> {
    return (await this.expect(await this.call('GET', '/__test/watches'), [200])) as Array<{ user: string }>;
  }

  /** SIGSTOP (stall) / SIGCONT. */
  signal(signal: NodeJS.Signals): void {
    this.peer?.signal(signal);
  }

  /** Stops the process (state kept on disk). */
  async stopProcess(): Promise<void> {
    await this.peer?.stop();
  }

  /** Starts the process again on the same port with its saved state. */
  async restart(): Promise<void> {
    await this.stopProcess();
    await this.launch();
  }

  async stop(): Promise<void> {
    await this.stopProcess();
    this.tls?.remove();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** One admin request, answered as status and parsed body. */
  call(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const send = this.tls ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(
        `${this.url}${path}`,
        {
          method,
          ca: this.tls ? readFileSync(this.tls.caFile) : undefined,
          headers: {
            authorization: `Bearer ${ADMIN_TOKEN}`,
            ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
          },
          timeout: 10_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as unknown) : undefined });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 10 s`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  private expect(answer: { status: number; body: unknown }, codes: number[]): unknown {
    if (!codes.includes(answer.status)) {
      throw new Error(`test API server answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    }
    return answer.body;
  }

  private async launch(): Promise<void> {
    const users: Record<string, ApiUser> = {
      admin: { tokens: [ADMIN_TOKEN], rules: [{ verbs: ['*'], namespaces: '*' }] },
      ...this.options.users,
    };
    const serverOptions = {
      port: this.port,
      stateFile: join(this.dir, 'state.json'),
      tls: this.tls ? { cert: this.tls.serverCert, key: this.tls.serverKey, ca: this.tls.caFile } : undefined,
      users,
      bookmarkIntervalMs: this.options.bookmarkIntervalMs ?? 1_000,
      goneAs: this.options.goneAs ?? 'event',
    };
    this.peer = new PeerProcess({
      name: `kubernetes-api:${this.port}`,
      command: process.execPath,
      args: [SERVER_SCRIPT],
      env: { API_SERVER_OPTIONS: JSON.stringify(serverOptions) },
      ready: () => canConnect('127.0.0.1', this.port, 200),
      readyTimeoutMs: 15_000,
    });
    await this.peer.start();
  }
}
