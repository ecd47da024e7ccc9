import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DiscoveryOptions } from '../../../lib/index.js';
import { findFreePort } from '../../../lib/core/tcp.js';
import { ConsulAgent, consulBinary } from '../../support/peers/consul.js';
import { DnsmasqPeer, ensureDnsmasq } from '../../support/peers/dnsmasq.js';
import { EtcdPeer } from '../../support/peers/etcd.js';
import { XdsControlPlane } from '../../support/xds/xds-control-plane.js';
import { CLUSTER_TYPE, edsCluster, ENDPOINT_TYPE, loadAssignment } from '../../support/xds/xds-resources.js';

// The five backends under fault, one class each, kept in one file (over 300
// lines) so what "down", "restart" and "stall" mean for each reads side by side.

/** Registration timing of every fault scenario: short, so expiries happen within a test. */
export const FAULT_TTL_S = 2;
export const FAULT_HEARTBEAT_S = 0.5;

/**
 * One backend under fault: its real server (or, for `local`, its folder),
 * the options clients and instances use, and the faults the harness can
 * inflict on it. Faults a backend cannot have throw {@link NotApplicable}.
 */
export interface FaultBackend {
  readonly name: 'local' | 'etcd' | 'consul' | 'dns' | 'mesh';
  /** False for DNS and mesh: instances do not register; records / resources are published by the test. */
  readonly registers: boolean;
  /**
   * Why this backend cannot run here (a peer that is missing outside CI);
   * undefined when it can. May install the peer first, and throws under
   * `CI=true` when it cannot: callers record either as a failed row.
   */
  unavailableReason(): string | undefined;
  start(): Promise<void>;
  close(): Promise<void>;
  /** Options for clients and self-registering instances. */
  options(): DiscoveryOptions;
  /** Options pointing at a registry that does not answer at all. */
  unreachableOptions(): Promise<DiscoveryOptions>;
  /** DNS and mesh: serve these ports as the service's records / endpoints (an empty list: the service exists with zero instances). */
  publish(service: string, ports: readonly number[]): Promise<void>;
  stopRegistry(): Promise<void>;
  startRegistry(): Promise<void>;
  /** Stop and start again (for Consul dev mode and dnsmasq: state is rebuilt by registrations / configuration). */
  restartRegistry(): Promise<void>;
  stallRegistry(): void;
  resumeRegistry(): void;
}

/** A fault this backend cannot have (reported as n/a with the reason). */
export class NotApplicable extends Error {}

const timing = {
  registration: { ttl: FAULT_TTL_S, heartbeatInterval: FAULT_HEARTBEAT_S },
  refreshInterval: 1,
} as const;

/** A port nothing listens on (picked free, never bound). */
async function deadPort(): Promise<number> {
  return findFreePort();
}

/**
 * `local`: the registry is a folder. "Down" means the folder cannot be read
 * (its path is a regular file, so every read fails with ENOTDIR); it has
 * no process to restart or stall.
 */
export class LocalFaultBackend implements FaultBackend {
  readonly name = 'local';
  readonly registers = true;
  private root = '';

  private get dir(): string {
    return join(this.root, 'registry');
  }

  unavailableReason(): undefined {
    return undefined;
  }

  async start(): Promise<void> {
    this.root = await mkdtemp(join(tmpdir(), 'sy-faults-local-'));
  }

  async close(): Promise<void> {
    if (this.root) await rm(this.root, { recursive: true, force: true });
  }

  options(): DiscoveryOptions {
    return { backend: 'local', backendConfig: { dir: this.dir }, loadBalance: 'round_robin', ...timing };
  }

  async unreachableOptions(): Promise<DiscoveryOptions> {
    const file = join(this.root, 'not-a-folder');
    await writeFile(file, 'the registry folder is missing\n');
    return { ...this.options(), backendConfig: { dir: join(file, 'registry') } };
  }

  async publish(): Promise<void> {}

  async stopRegistry(): Promise<void> {
    await rename(this.dir, `${this.dir}.away`).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    await writeFile(this.dir, 'the registry folder is unavailable\n');
  }

  async startRegistry(): Promise<void> {
    await rm(this.dir, { force: true });
    await rename(`${this.dir}.away`, this.dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }

  async restartRegistry(): Promise<void> {
    throw new NotApplicable('the local backend has no registry process: the folder is the registry');
  }

  stallRegistry(): void {
    throw new NotApplicable('the local backend has no registry process to stall');
  }

  resumeRegistry(): void {}
}

/** `etcd`: one real member; restart keeps its data dir (leases and keys survive). */
export class EtcdFaultBackend implements FaultBackend {
  readonly name = 'etcd';
  readonly registers = true;
  private etcd: EtcdPeer | undefined;

  unavailableReason(): undefined {
    // EtcdPeer.start() installs etcd when it is missing, and fails with the reason when it cannot.
    return undefined;
  }

  async start(): Promise<void> {
    this.etcd = await EtcdPeer.start();
  }

  async close(): Promise<void> {
    await this.etcd?.stop();
  }

  private get member() {
    return this.etcd!.members[0];
  }

  options(): DiscoveryOptions {
    return {
      backend: 'etcd',
      backendConfig: { endpoints: this.etcd!.endpoints, dialTimeout: 1 },
      loadBalance: 'round_robin',
      ...timing,
    };
  }

  async unreachableOptions(): Promise<DiscoveryOptions> {
    return {
      ...this.options(),
      backendConfig: { endpoints: [`http://127.0.0.1:${await deadPort()}`], dialTimeout: 1 },
    };
  }

  async publish(): Promise<void> {}

  async stopRegistry(): Promise<void> {
    await this.member.stop();
  }

  async startRegistry(): Promise<void> {
    await this.member.start();
  }

  async restartRegistry(): Promise<void> {
    await this.member.kill();
    await this.member.start();
  }

  stallRegistry(): void {
    this.member.signal('SIGSTOP');
  }

  resumeRegistry(): void {
    this.member.signal('SIGCONT');
  }
}

/** `consul`: one real dev-mode agent; a restart loses every registration (instances must register again). */
export class ConsulFaultBackend implements FaultBackend {
  readonly name = 'consul';
  readonly registers = true;
  private agent: ConsulAgent | undefined;

  unavailableReason(): string | undefined {
    return consulBinary() ? undefined : 'the consul binary is not installed and scripts/peers/install-consul.sh failed';
  }

  async start(): Promise<void> {
    this.agent = await ConsulAgent.start({});
  }

  async close(): Promise<void> {
    await this.agent?.stop();
  }

  options(): DiscoveryOptions {
    return {
      backend: 'consul',
      backendConfig: { url: this.agent!.url, wait: 1 },
      loadBalance: 'round_robin',
      ...timing,
    };
  }

  async unreachableOptions(): Promise<DiscoveryOptions> {
    return { ...this.options(), backendConfig: { url: `http://127.0.0.1:${await deadPort()}`, wait: 1 } };
  }

  async publish(): Promise<void> {}

  async stopRegistry(): Promise<void> {
    await this.agent!.stop();
  }

  async startRegistry(): Promise<void> {
    await this.agent!.restart();
  }

  async restartRegistry(): Promise<void> {
    await this.agent!.restart();
  }

  stallRegistry(): void {
    this.agent!.signal('SIGSTOP');
  }

  resumeRegistry(): void {
    this.agent!.signal('SIGCONT');
  }
}

/**
 * `dns`: a real dnsmasq serving SRV records `_grpc._tcp.<service>.svc.test`
 * for the instances' ports (TTL 1 s). Instances do not register; a restart
 * brings the same records back.
 */
export class DnsFaultBackend implements FaultBackend {
  readonly name = 'dns';
  readonly registers = false;
  private dnsmasq: DnsmasqPeer | undefined;
  private readonly published = new Map<string, readonly number[]>();

  unavailableReason(): string | undefined {
    const { binary, reason } = ensureDnsmasq();
    return binary ? undefined : reason;
  }

  async start(): Promise<void> {
    this.dnsmasq = await DnsmasqPeer.start({ localTtl: 1, hostRecords: ['node.svc.test,127.0.0.1'] });
  }

  async close(): Promise<void> {
    await this.dnsmasq?.stop();
  }

  options(): DiscoveryOptions {
    return {
      backend: 'dns',
      backendConfig: {
        domain: 'svc.test',
        nameservers: [this.dnsmasq!.nameserver],
        timeout: 0.5,
        tries: 1,
        ttlFloor: 0.5,
      },
      loadBalance: 'round_robin',
      ...timing,
    };
  }

  async unreachableOptions(): Promise<DiscoveryOptions> {
    return {
      ...this.options(),
      backendConfig: {
        domain: 'svc.test',
        nameservers: [`127.0.0.1:${await deadPort()}`],
        timeout: 0.5,
        tries: 1,
        ttlFloor: 0.5,
      },
    };
  }

  async publish(service: string, ports: readonly number[]): Promise<void> {
    this.published.set(service, ports);
    await this.dnsmasq!.restart(this.records());
  }

  private records() {
    const srvHosts = [...this.published].flatMap(([service, ports]) =>
      ports.map((port) => `_grpc._tcp.${service}.svc.test,node.svc.test,${port},0,10`),
    );
    return { srvHosts, hostRecords: ['node.svc.test,127.0.0.1'] };
  }

  async stopRegistry(): Promise<void> {
    await this.dnsmasq!.stopProcess();
  }

  async startRegistry(): Promise<void> {
    await this.dnsmasq!.restart(this.records());
  }

  async restartRegistry(): Promise<void> {
    await this.dnsmasq!.restart(this.records());
  }

  stallRegistry(): void {
    this.dnsmasq!.signal('SIGSTOP');
  }

  resumeRegistry(): void {
    this.dnsmasq!.signal('SIGCONT');
  }
}

/**
 * `mesh`: the project's xDS control plane (an ADS server on grpc-js) serving
 * an EDS cluster per service. It runs inside the test process, so it can be
 * stopped (streams cut) and started again on the same port, but not stalled.
 */
export class MeshFaultBackend implements FaultBackend {
  readonly name = 'mesh';
  readonly registers = false;
  private plane: XdsControlPlane | undefined;

  unavailableReason(): undefined {
    return undefined;
  }

  async start(): Promise<void> {
    this.plane = await XdsControlPlane.start();
  }

  async close(): Promise<void> {
    await this.plane?.close();
  }

  options(): DiscoveryOptions {
    return {
      backend: 'mesh',
      backendConfig: { xdsServer: this.plane!.url, nodeId: 'switchyard-faults' },
      loadBalance: 'round_robin',
      ...timing,
    };
  }

  async unreachableOptions(): Promise<DiscoveryOptions> {
    return {
      ...this.options(),
      backendConfig: { xdsServer: `http://127.0.0.1:${await deadPort()}`, nodeId: 'switchyard-faults' },
    };
  }

  async publish(service: string, ports: readonly number[]): Promise<void> {
    this.plane!.set(CLUSTER_TYPE, edsCluster(service));
    this.plane!.set(
      ENDPOINT_TYPE,
      loadAssignment(service, [{ region: 'test', endpoints: ports.map((port) => ({ address: `127.0.0.1:${port}` })) }]),
    );
  }

  async stopRegistry(): Promise<void> {
    await this.plane!.stop();
  }

  async startRegistry(): Promise<void> {
    await this.plane!.start();
  }

  async restartRegistry(): Promise<void> {
    await this.plane!.stop();
    await this.plane!.start();
  }

  stallRegistry(): void {
    throw new NotApplicable('the test control plane runs inside the test process and cannot be stopped with SIGSTOP');
  }

  resumeRegistry(): void {}
}
