import { createConnection, createServer } from 'node:net';

/** Ports handed out recently by this process: the OS may offer a just-closed port again. */
const handedOut = new Set<number>();

/**
 * Asks the OS for a free TCP port on `host` (binds port 0, reads it,
 * closes), never returning the same port twice in one process.
 *
 * @example
 * const port = await findFreePort(); // then listen on 127.0.0.1:port
 */
export async function findFreePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const port = await bindEphemeral(host);
    if (!handedOut.has(port) || attempt >= 20) {
      handedOut.add(port);
      if (handedOut.size > 4_096) handedOut.delete(handedOut.values().next().value as number);
      return port;
    }
  }
}

function bindEphemeral(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('could not read the bound port'))));
    });
  });
}

/** Resolves true when a TCP connection to host:port succeeds within `timeoutMs`. */
export function canConnect(host: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Polls until host:port accepts TCP connections or `timeoutMs` passes.
 * Resolves true on success, false on timeout; `signal` aborts early (false).
 */
export async function waitForTcp(
  host: string,
  port: number,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let delay = 20;
  while (!signal?.aborted) {
    if (await canConnect(host, port, Math.min(1_000, Math.max(50, deadline - Date.now())))) return true;
    if (Date.now() >= deadline) return false;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, Math.min(delay, Math.max(0, deadline - Date.now())));
      signal?.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          resolve();
        },
        { once: true },
      );
    });
    delay = Math.min(delay * 2, 250);
  }
  return false;
}
