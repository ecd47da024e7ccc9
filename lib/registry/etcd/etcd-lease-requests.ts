import type { IKeyValue } from 'etcd3';
import type { EtcdConnection } from './etcd-connection.js';

// The etcd requests a registration makes about its one key and lease, each
// through the connection (deadline, reachability). The registration decides
// when; these say how.

/** Grants a lease of `ttlSeconds`; resolves with its id. */
export async function grantLease(connection: EtcdConnection, ttlSeconds: number): Promise<string> {
  const grant = await connection.call('lease grant', (options) =>
    connection.client.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 }, options),
  );
  return grant.ID;
}

/** Revokes a lease (and so deletes its keys at once); rejects when etcd did not confirm. */
export async function revokeLease(connection: EtcdConnection, lease: string): Promise<void> {
  await connection.call('lease revoke', (options) => connection.client.leaseClient.leaseRevoke({ ID: lease }, options));
}

/** Revokes a lease in the background, ignoring the outcome (a lease given up locally). */
export function revokeLeaseQuietly(connection: EtcdConnection, lease: string): void {
  void connection.client.leaseClient
    .leaseRevoke({ ID: lease }, { deadline: Date.now() + connection.settings.requestTimeoutMs })
    .catch(() => undefined);
}

/**
 * One keepalive, moving to another member when one does not answer, until
 * the lease is renewed or `budgetMs` (what the lease has left) is spent;
 * resolves with the TTL etcd answered (0: lease gone).
 */
export function keepAliveOnce(connection: EtcdConnection, lease: string, budgetMs: number): Promise<number> {
  return connection.keepAlive(lease, budgetMs);
}

/** Puts `value` at `key` under `lease`; resolves with what the key held before. */
export async function putUnderLease(
  connection: EtcdConnection,
  key: string,
  value: string,
  lease: string,
): Promise<IKeyValue | undefined> {
  const response = await connection.call('put', (options) =>
    connection.client.kv.put({ key: Buffer.from(key), value: Buffer.from(value), lease, prev_kv: true }, options),
  );
  return response.prev_kv;
}

/**
 * In one transaction: nothing when `key` is attached to `lease`, otherwise
 * puts `value` under `lease`. Resolves with whether the key was ours, and
 * what it held when it was not.
 */
export async function putUnlessLeased(
  connection: EtcdConnection,
  key: string,
  value: string,
  lease: string,
): Promise<{ ours: boolean; previous: IKeyValue | undefined }> {
  const k = Buffer.from(key);
  const txn = await connection.call('txn', (options) =>
    connection.client.kv.txn(
      {
        compare: [{ key: k, target: 'Lease', result: 'Equal', lease }],
        success: [],
        failure: [{ request_put: { key: k, value: Buffer.from(value), lease, prev_kv: true } }],
      },
      options,
    ),
  );
  return { ours: txn.succeeded, previous: txn.responses[0]?.response_put?.prev_kv };
}

/** Deletes `key` if it is still attached to `lease` (an old key after the instance moved). */
export async function deleteIfLeased(connection: EtcdConnection, key: string, lease: string): Promise<void> {
  const k = Buffer.from(key);
  await connection.call('txn', (options) =>
    connection.client.kv.txn(
      {
        compare: [{ key: k, target: 'Lease', result: 'Equal', lease }],
        success: [{ request_delete_range: { key: k } }],
        failure: [],
      },
      options,
    ),
  );
}

/** What the previous holder of a key advertised, for the "two processes" warning. */
export function advertisedBy(previous: IKeyValue): string {
  try {
    const parsed = JSON.parse(previous.value?.toString('utf8') ?? '') as Record<string, unknown>;
    return ` (it advertised ${JSON.stringify(parsed.address ?? parsed.Addr ?? 'an unknown address')})`;
  } catch {
    // not JSON: name only the lease
    return '';
  }
}
