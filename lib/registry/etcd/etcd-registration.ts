import { Subject } from 'rxjs';
import type { IKeyValue } from 'etcd3';
import { Backoff } from '../../core/backoff.js';
import { RegistrationError } from '../../core/errors.js';
import type { ServiceInstance } from '../../core/service-instance.js';
import type { DiscoveryLogger, Registration, RegistrationEvent, RegistrationTiming } from '../registry.interface.js';
import { describeError, type EtcdConnection } from './etcd-connection.js';
import type { EtcdKeyLayout } from './etcd-key-layout.js';

/**
 * One instance registered in etcd: its key is put under a lease of the
 * registration TTL, renewed every heartbeat. When the lease is lost (etcd
 * answers TTL 0, or no keepalive succeeded for a whole TTL) a new lease is
 * granted and the key put again as soon as etcd answers, with `lost` and
 * `restored` events. Each heartbeat also checks that the key is still ours
 * and puts it back when it vanished or another writer replaced it (which is
 * logged: two processes share one instance id).
 *
 * @example
 * const registration = await registry.register(instance, { ttlMs: 30_000, heartbeatMs: 10_000 });
 * registration.events$.subscribe((e) => console.log(e.type)); await registration.deregister();
 */
export class EtcdRegistration implements Registration {
  private readonly events = new Subject<RegistrationEvent>();
  readonly events$ = this.events.asObservable();
  private key: string;
  private leaseId: string | undefined;
  /** Leases given up locally that may still exist in etcd; revoked once a new lease holds the key. */
  private readonly abandonedLeases = new Set<string>();
  private lastRenewedAt = 0;
  /** The key holds the current instance value under the current lease (as far as we know). */
  private keyCurrent = false;
  /** A `lost` event was emitted and no `restored` yet. */
  private lostSince: number | undefined;
  private active = true;
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;
  private readonly backoff: Backoff;
  private unreachableLogged = false;
  private warnedForeignLease: string | undefined;
  private readonly releaseConnection: () => void;

  constructor(
    private current: ServiceInstance,
    private readonly timing: RegistrationTiming,
    private readonly connection: EtcdConnection,
    private readonly layout: EtcdKeyLayout,
    private readonly logger: DiscoveryLogger,
    private readonly onDone: (registration: EtcdRegistration) => void,
  ) {
    this.key = layout.keyOf(current);
    this.backoff = new Backoff({ initialMs: Math.min(100, timing.heartbeatMs / 4), maxMs: timing.heartbeatMs });
    this.releaseConnection = connection.acquire();
  }

  get instance(): ServiceInstance {
    return this.current;
  }

  /** The etcd key holding this instance. */
  get etcdKey(): string {
    return this.key;
  }

  /** The lease the key is attached to, when one is held. */
  get lease(): string | undefined {
    return this.leaseId;
  }

  /** True while the key is believed present under a live lease. */
  get registered(): boolean {
    return this.active && this.leaseId !== undefined && this.keyCurrent && this.lostSince === undefined;
  }

  /**
   * First attempt. In strict mode a failure is thrown; otherwise it is
   * logged, reported as `lost`, and retried in the background.
   */
  async start(strict: boolean): Promise<void> {
    try {
      await this.run(() => this.establish());
      this.schedule(this.timing.heartbeatMs);
    } catch (error) {
      if (strict) {
        await this.stop();
        throw new RegistrationError(
          `Could not register ${this.describe()} in etcd (backend_config.strict is set): ${describeError(error)}`,
          { cause: error },
        );
      }
      this.logger.warn(
        `Could not register ${this.describe()} in etcd yet (${describeError(error)}); retrying in the background`,
      );
      this.unreachableLogged = true;
      this.markLost(`registry unreachable: ${describeError(error)}`);
      this.schedule(this.backoff.next());
    }
  }

  async heartbeat(): Promise<void> {
    if (!this.active) return;
    clearTimeout(this.timer);
    await this.inflight?.catch(() => undefined);
    await this.beat();
  }

  async update(instance: ServiceInstance): Promise<void> {
    if (instance.id !== this.current.id) {
      throw new RegistrationError(`update must keep instance id '${this.current.id}' (got '${instance.id}')`);
    }
    const size = Buffer.byteLength(this.layout.encode(instance));
    if (size > this.connection.settings.maxValueBytes) {
      throw new RegistrationError(
        `Instance '${instance.id}' encodes to ${size} bytes, over the ${this.connection.settings.maxValueBytes}-byte limit (trim tags or metadata)`,
      );
    }
    await this.inflight?.catch(() => undefined);
    const oldKey = this.key;
    this.current = instance;
    this.key = this.layout.keyOf(instance);
    this.keyCurrent = false;
    if (!this.active || this.leaseId === undefined) return;
    try {
      await this.run(async () => {
        await this.putKey();
        if (oldKey !== this.key) await this.deleteIfOurs(oldKey);
      });
    } catch (error) {
      if (!this.connection.isNoAnswer(error)) throw error;
      // The next heartbeat puts the new value (keyCurrent is false).
      this.logger.warn(
        `Could not update ${this.describe()} in etcd now (${describeError(error)}); the next heartbeat retries`,
      );
    }
  }

  async deregister(): Promise<void> {
    if (!this.active) return;
    await this.stop();
    const lease = this.leaseId;
    this.leaseId = undefined;
    if (lease !== undefined) {
      try {
        // Revoking deletes the key with it, at once, for every watcher.
        await this.connection.call('lease revoke', (options) =>
          this.connection.client.leaseClient.leaseRevoke({ ID: lease }, options),
        );
      } catch (error) {
        this.logger.warn(
          `Could not revoke the lease of ${this.describe()} (${describeError(error)}); its key expires within ${this.timing.ttlMs} ms`,
        );
      }
    }
    this.revokeAbandoned();
    this.events.complete();
  }

  /** Stops the timers and waits for a heartbeat in progress, without touching etcd. */
  private async stop(): Promise<void> {
    this.active = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.inflight?.catch(() => undefined);
    this.releaseConnection();
    this.onDone(this);
  }

  private schedule(delayMs: number): void {
    if (!this.active) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.beat(), delayMs);
  }

  /** Runs one step, remembered so deregister/update wait for it instead of racing it. */
  private run(step: () => Promise<void>): Promise<void> {
    const promise = step();
    this.inflight = promise;
    return promise.finally(() => {
      if (this.inflight === promise) this.inflight = undefined;
    });
  }

  private async beat(): Promise<void> {
    this.timer = undefined;
    if (!this.active) return;
    try {
      await this.run(() => this.renewOrEstablish());
      if (this.unreachableLogged) this.logger.log(`etcd registration of ${this.describe()} is current again`);
      this.unreachableLogged = false;
      this.backoff.reset();
      this.schedule(this.timing.heartbeatMs);
    } catch (error) {
      if (!this.active) return;
      const sinceRenewal = Date.now() - this.lastRenewedAt;
      if (this.leaseId !== undefined && this.connection.isLeaseGone(error)) {
        // A put under a lease etcd no longer has: start over at once.
        this.leaseLost(describeError(error));
        this.schedule(0);
        return;
      }
      if (this.leaseId !== undefined && sinceRenewal >= this.timing.ttlMs) {
        // etcd has dropped the lease (and our key) by now, whether or not we
        // can hear it say so.
        this.leaseLost(
          `no lease keepalive succeeded for ${sinceRenewal} ms (TTL ${this.timing.ttlMs} ms): ${describeError(error)}`,
        );
      } else if (this.leaseId === undefined && this.lostSince === undefined) {
        this.markLost(`registry unreachable: ${describeError(error)}`);
      }
      if (!this.unreachableLogged) {
        this.logger.warn(
          `etcd heartbeat for ${this.describe()} failed (${describeError(error)}); retrying with backoff`,
        );
        this.unreachableLogged = true;
      }
      // Never wait longer than a heartbeat: once etcd answers again the key
      // must be back within one heartbeat.
      this.schedule(Math.min(this.backoff.next(), this.timing.heartbeatMs));
    }
  }

  private async renewOrEstablish(): Promise<void> {
    if (this.leaseId === undefined) return this.establish();
    const ttl = await this.keepAliveOnce(this.leaseId);
    if (!this.active) return;
    if (ttl <= 0) {
      this.leaseLost('etcd reports the lease expired');
      return this.establish();
    }
    this.lastRenewedAt = Date.now();
    await this.ensureKey();
  }

  /** Grants a fresh lease and puts the key under it. */
  private async establish(): Promise<void> {
    const ttlSeconds = Math.max(1, Math.ceil(this.timing.ttlMs / 1000));
    const grant = await this.connection.call('lease grant', (options) =>
      this.connection.client.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 }, options),
    );
    if (!this.active) {
      // Deregistered meanwhile: give the new lease back.
      void this.connection.client.leaseClient.leaseRevoke({ ID: grant.ID }).catch(() => undefined);
      return;
    }
    this.leaseId = grant.ID;
    this.lastRenewedAt = Date.now();
    this.keyCurrent = false;
    await this.putKey();
    this.revokeAbandoned();
    if (this.lostSince !== undefined) {
      const outage = Date.now() - this.lostSince;
      this.lostSince = undefined;
      this.logger.log(`etcd registration of ${this.describe()} restored under lease ${grant.ID} after ${outage} ms`);
      this.events.next({ type: 'restored', instance: this.current, at: Date.now() });
    }
  }

  /** One keepalive over a short-lived stream; resolves with the TTL etcd answered (0: lease gone). */
  private keepAliveOnce(leaseId: string): Promise<number> {
    return this.connection.call('lease keepalive', async (options) => {
      const stream = await this.connection.client.leaseClient.leaseKeepAlive(options);
      return new Promise<number>((resolve, reject) => {
        stream.on('data', (response) => {
          resolve(Number(response.TTL));
          // Half-close: etcd ends the stream cleanly (a cancel would be
          // reported as a host failure and reset every stream of the host).
          stream.end();
        });
        stream.on('error', reject);
        stream.on('end', () => reject(new Error('lease keepalive stream ended without an answer')));
        stream.write({ ID: leaseId });
      });
    });
  }

  /**
   * Makes sure the key holds our value under our lease, in one request: a
   * transaction that does nothing when the key's lease is ours, and puts
   * the key (returning what was there) when it is not.
   */
  private async ensureKey(): Promise<void> {
    const lease = this.leaseId!;
    if (!this.keyCurrent) return this.putKey();
    const key = Buffer.from(this.key);
    const txn = await this.connection.call('txn', (options) =>
      this.connection.client.kv.txn(
        {
          compare: [{ key, target: 'Lease', result: 'Equal', lease }],
          success: [],
          failure: [
            { request_put: { key, value: Buffer.from(this.layout.encode(this.current)), lease, prev_kv: true } },
          ],
        },
        options,
      ),
    );
    if (txn.succeeded) return;
    const previous = txn.responses[0]?.response_put?.prev_kv;
    this.reportReplaced(previous, 'heartbeat');
    if (!previous) {
      // Deleted behind our back (etcdctl del, a compaction tool, ...): back now.
      this.logger.warn(
        `etcd key ${this.key} of ${this.describe()} had disappeared while its lease was alive; put it back`,
      );
      this.events.next({ type: 'lost', instance: this.current, reason: `key ${this.key} was deleted`, at: Date.now() });
      this.events.next({ type: 'restored', instance: this.current, at: Date.now() });
    }
  }

  private async putKey(): Promise<void> {
    const lease = this.leaseId!;
    const response = await this.connection.call('put', (options) =>
      this.connection.client.kv.put(
        { key: Buffer.from(this.key), value: Buffer.from(this.layout.encode(this.current)), lease, prev_kv: true },
        options,
      ),
    );
    this.keyCurrent = true;
    this.reportReplaced(response.prev_kv, 'register');
  }

  /** Logs when the key we just overwrote belonged to a live lease that is not ours. */
  private reportReplaced(previous: IKeyValue | undefined, when: string): void {
    if (!previous || !previous.lease || previous.lease === '0') return;
    if (previous.lease === this.leaseId || this.abandonedLeases.has(previous.lease)) return;
    if (this.warnedForeignLease === previous.lease) return;
    this.warnedForeignLease = previous.lease;
    let holder = '';
    const value = previous.value?.toString('utf8') ?? '';
    try {
      const parsed = JSON.parse(value) as Record<string, unknown>;
      holder = ` (it advertised ${JSON.stringify(parsed.address ?? parsed.Addr ?? 'an unknown address')})`;
    } catch {
      // not JSON: name only the lease
    }
    this.logger.warn(
      `etcd key ${this.key} was held by another writer under lease ${previous.lease}${holder} at ${when}: ` +
        `two processes register instance id '${this.current.id}'; this one (${this.current.address}, lease ${this.leaseId}) took it back`,
    );
  }

  private async deleteIfOurs(key: string): Promise<void> {
    const k = Buffer.from(key);
    await this.connection.call('txn', (options) =>
      this.connection.client.kv.txn(
        {
          compare: [{ key: k, target: 'Lease', result: 'Equal', lease: this.leaseId! }],
          success: [{ request_delete_range: { key: k } }],
          failure: [],
        },
        options,
      ),
    );
  }

  private leaseLost(reason: string): void {
    if (this.leaseId !== undefined) this.abandonedLeases.add(this.leaseId);
    this.leaseId = undefined;
    this.keyCurrent = false;
    this.markLost(`lease lost: ${reason}`);
  }

  private markLost(reason: string): void {
    if (this.lostSince !== undefined) return;
    this.lostSince = Date.now();
    this.logger.warn(`etcd registration of ${this.describe()} lost: ${reason}`);
    this.events.next({ type: 'lost', instance: this.current, reason, at: Date.now() });
  }

  private revokeAbandoned(): void {
    for (const lease of this.abandonedLeases) {
      this.abandonedLeases.delete(lease);
      void this.connection.client.leaseClient
        .leaseRevoke({ ID: lease }, { deadline: Date.now() + this.connection.settings.requestTimeoutMs })
        .catch(() => undefined);
    }
  }

  private describe(): string {
    return `${this.current.service} instance ${this.current.id} (${this.current.address})`;
  }
}
