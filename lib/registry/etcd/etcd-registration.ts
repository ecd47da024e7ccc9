import type { IKeyValue } from 'etcd3';
import { RegistrationError } from '../../core/errors.js';
import type { ServiceInstance } from '../../core/service-instance.js';
import type { DiscoveryLogger, RegistrationTiming } from '../registry.interface.js';
import { RegistrationBase } from '../shared/registration-base.js';
import { describeError, type EtcdConnection } from './etcd-connection.js';
import type { EtcdKeyLayout } from './etcd-key-layout.js';
import {
  advertisedBy,
  deleteIfLeased,
  grantLease,
  keepAliveOnce,
  putUnderLease,
  putUnlessLeased,
  revokeLease,
  revokeLeaseQuietly,
} from './etcd-lease-requests.js';

/** Keepalives give up this long before the lease would expire, leaving time to report it and start over. */
const KEEPALIVE_MARGIN_MS = 250;

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
export class EtcdRegistration extends RegistrationBase {
  private key: string;
  private leaseId: string | undefined;
  /** Leases given up locally that may still exist in etcd; revoked once a new lease holds the key. */
  private readonly abandonedLeases = new Set<string>();
  private lastRenewedAt = 0;
  /** The key holds the current instance value under the current lease (as far as we know). */
  private keyCurrent = false;
  /** The last refresh found the lease gone: retry at once, with a new lease. */
  private retryNow = false;
  private unreachableLogged = false;
  private warnedForeignLease: string | undefined;
  private readonly releaseConnection: () => void;

  constructor(
    instance: ServiceInstance,
    timing: RegistrationTiming,
    private readonly connection: EtcdConnection,
    private readonly layout: EtcdKeyLayout,
    private readonly logger: DiscoveryLogger,
    onEnd: () => void,
  ) {
    super(instance, timing, {
      onEnd: () => {
        this.releaseConnection();
        onEnd();
      },
    });
    this.key = layout.keyOf(instance);
    this.releaseConnection = connection.acquire();
  }

  /** The etcd key holding this instance. */
  get etcdKey(): string {
    return this.key;
  }

  /** The lease the key is attached to, when one is held. */
  get lease(): string | undefined {
    return this.leaseId;
  }

  /**
   * First attempt. In strict mode a failure is thrown; otherwise it is
   * logged, reported as `lost`, and retried in the background.
   */
  start(strict: boolean): Promise<void> {
    return this.begin(
      () => this.establish(),
      (error) => {
        if (strict) {
          return {
            fail: new RegistrationError(
              `Could not register ${this.describe()} in etcd (backend_config.strict is set): ${describeError(error)}`,
              { cause: error },
            ),
          };
        }
        this.logger.warn(
          `Could not register ${this.describe()} in etcd yet (${describeError(error)}); retrying in the background`,
        );
        this.unreachableLogged = true;
        const reason = `registry unreachable: ${describeError(error)}`;
        this.logger.warn(`etcd registration of ${this.describe()} lost: ${reason}`);
        return { pending: reason };
      },
    );
  }

  protected override checkUpdate(instance: ServiceInstance): void {
    this.layout.checkWritable(instance);
    const size = Buffer.byteLength(this.layout.encode(instance));
    if (size > this.connection.settings.maxValueBytes) {
      throw new RegistrationError(
        `Instance '${instance.id}' encodes to ${size} bytes, over the ${this.connection.settings.maxValueBytes}-byte limit (trim tags or metadata)`,
      );
    }
  }

  protected async write(instance: ServiceInstance): Promise<void> {
    const oldKey = this.key;
    this.current = instance;
    this.key = this.layout.keyOf(instance);
    this.keyCurrent = false;
    if (!this.active || this.leaseId === undefined) return;
    try {
      await this.putKey();
      if (oldKey !== this.key) await this.deleteIfOurs(oldKey);
    } catch (error) {
      if (!this.connection.isNoAnswer(error)) throw error;
      // The next heartbeat puts the new value (keyCurrent is false).
      this.logger.warn(
        `Could not update ${this.describe()} in etcd now (${describeError(error)}); the next heartbeat retries`,
      );
    }
  }

  protected async remove(): Promise<void> {
    const lease = this.leaseId;
    this.leaseId = undefined;
    if (lease !== undefined) {
      try {
        // Revoking deletes the key with it, at once, for every watcher.
        await revokeLease(this.connection, lease);
      } catch (error) {
        this.logger.warn(
          `Could not revoke the lease of ${this.describe()} (${describeError(error)}); its key expires within ${this.timing.ttlMs} ms`,
        );
      }
    }
    this.revokeAbandoned();
  }

  protected async refresh(): Promise<void> {
    try {
      await this.renewOrEstablish();
    } catch (error) {
      if (this.active) this.onRefreshFailure(error);
      throw error;
    }
    if (this.unreachableLogged) this.logger.log(`etcd registration of ${this.describe()} is current again`);
    this.unreachableLogged = false;
  }

  protected override retryDelay(error: unknown): number {
    if (this.retryNow) {
      this.retryNow = false;
      return 0;
    }
    // Never wait longer than a heartbeat: once etcd answers again the key
    // must be back within one heartbeat.
    return super.retryDelay(error);
  }

  private onRefreshFailure(error: unknown): void {
    const sinceRenewal = Date.now() - this.lastRenewedAt;
    if (this.leaseId !== undefined && this.connection.isLeaseGone(error)) {
      // A put under a lease etcd no longer has: start over at once.
      this.leaseLost(describeError(error));
      this.retryNow = true;
      return;
    }
    if (this.leaseId !== undefined && sinceRenewal >= this.timing.ttlMs) {
      // etcd has dropped the lease (and our key) by now, whether or not we
      // can hear it say so.
      this.leaseLost(
        `no lease keepalive succeeded for ${sinceRenewal} ms (TTL ${this.timing.ttlMs} ms): ${describeError(error)}`,
      );
    } else if (this.leaseId === undefined) {
      this.lost(`registry unreachable: ${describeError(error)}`);
    }
    if (!this.unreachableLogged) {
      this.logger.warn(`etcd heartbeat for ${this.describe()} failed (${describeError(error)}); retrying with backoff`);
      this.unreachableLogged = true;
    }
  }

  private async renewOrEstablish(): Promise<void> {
    if (this.leaseId === undefined) return this.establish();
    // Keep trying (on each member in turn) for as long as the lease lives: an election
    // takes a second or two, often longer than one request's deadline.
    const leaseLeftMs = this.lastRenewedAt + this.timing.ttlMs - Date.now() - KEEPALIVE_MARGIN_MS;
    const ttl = await keepAliveOnce(this.connection, this.leaseId, leaseLeftMs);
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
    const lease = await grantLease(this.connection, ttlSeconds);
    if (!this.active) {
      // Deregistered meanwhile: give the new lease back.
      revokeLeaseQuietly(this.connection, lease);
      return;
    }
    this.leaseId = lease;
    this.lastRenewedAt = Date.now();
    this.keyCurrent = false;
    await this.putKey();
    this.revokeAbandoned();
    const outage = this.markRestored();
    if (outage !== undefined) {
      this.logger.log(`etcd registration of ${this.describe()} restored under lease ${lease} after ${outage} ms`);
    }
  }

  /**
   * Makes sure the key holds our value under our lease, in one request: a
   * transaction that does nothing when the key's lease is ours, and puts
   * the key (returning what was there) when it is not.
   */
  private async ensureKey(): Promise<void> {
    if (!this.keyCurrent) return this.putKey();
    const { ours, previous } = await putUnlessLeased(
      this.connection,
      this.key,
      this.layout.encode(this.current),
      this.leaseId!,
    );
    if (ours) return;
    this.reportReplaced(previous, 'heartbeat');
    if (!previous) {
      // Deleted behind our back (etcdctl del, a compaction tool, ...): back now.
      this.logger.warn(
        `etcd key ${this.key} of ${this.describe()} had disappeared while its lease was alive; put it back`,
      );
      this.markLost(`key ${this.key} was deleted`);
      this.markRestored();
    }
  }

  private async putKey(): Promise<void> {
    const previous = await putUnderLease(this.connection, this.key, this.layout.encode(this.current), this.leaseId!);
    this.keyCurrent = true;
    this.reportReplaced(previous, 'register');
  }

  /** Logs when the key we just overwrote belonged to a live lease that is not ours. */
  private reportReplaced(previous: IKeyValue | undefined, when: string): void {
    if (!previous || !previous.lease || previous.lease === '0') return;
    if (previous.lease === this.leaseId || this.abandonedLeases.has(previous.lease)) return;
    if (this.warnedForeignLease === previous.lease) return;
    this.warnedForeignLease = previous.lease;
    this.logger.warn(
      `etcd key ${this.key} was held by another writer under lease ${previous.lease}${advertisedBy(previous)} at ${when}: ` +
        `two processes register instance id '${this.current.id}'; this one (${this.current.address}, lease ${this.leaseId}) took it back`,
    );
  }

  private deleteIfOurs(key: string): Promise<void> {
    return deleteIfLeased(this.connection, key, this.leaseId!);
  }

  private leaseLost(reason: string): void {
    if (this.leaseId !== undefined) this.abandonedLeases.add(this.leaseId);
    this.leaseId = undefined;
    this.keyCurrent = false;
    this.lost(`lease lost: ${reason}`);
  }

  private lost(reason: string): void {
    if (this.markLost(reason)) this.logger.warn(`etcd registration of ${this.describe()} lost: ${reason}`);
  }

  private revokeAbandoned(): void {
    for (const lease of this.abandonedLeases) {
      this.abandonedLeases.delete(lease);
      revokeLeaseQuietly(this.connection, lease);
    }
  }

  private describe(): string {
    return `${this.current.service} instance ${this.current.id} (${this.current.address})`;
  }
}
