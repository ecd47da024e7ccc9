import { ClientTCP, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import type { Endpoint } from '../../core/endpoint.js';
import type { TcpTransportOptions } from '../../client/client-options.js';

/** What one request hears from its connection. */
export interface RequestListener {
  /** A reply packet (a stream sends several; the last one is disposed). */
  reply(packet: WritePacket): void;
  /** Failed below the application; `written` says whether the packet's bytes left this process. */
  failed(reason: string, written: boolean): void;
}

/** ClientTCP's own options, without host and port (they come from the endpoint). */
export type NestTcpOptions = Omit<TcpTransportOptions, 'hashKey' | 'idempotent' | 'timeoutMs' | 'connectTimeoutMs'>;

const NOTHING = (): boolean => false;

/**
 * Nest's ClientTCP for one endpoint, with what balancing needs on top: for
 * every request it knows whether the packet was written (the socket took
 * its bytes) before the connection failed, so a send that never left can be
 * retried on another endpoint and one that did is not. Everything else —
 * framing, TLS, serializer, deserializer, stream replies — is ClientTCP's.
 * Socket errors are not logged (ClientTCP logs them): a failure reaches the
 * caller through its send(), naming the endpoint.
 */
export class EndpointTcpClient extends ClientTCP {
  private readonly pending = new Map<string, PendingRequest>();
  /** The socket whose connect() resolved; differs from `socket` while a new one connects. */
  private connectedSocket: unknown = null;
  private lastSocketError: string | undefined;
  /** TLS: settles when the newest socket's handshake is done (a TLS socket "connects" before it). */
  private handshake: Promise<void> | undefined;
  /** Replies parsed on the current socket: none after bytes arrived means another protocol answered. */
  private repliesOnSocket = 0;
  /** The socket corked until the end of this tick, if any. */
  private corked: CorkableSocket | undefined;

  constructor(
    readonly endpoint: Endpoint,
    options: NestTcpOptions,
  ) {
    super({ ...options, host: endpoint.host, port: endpoint.port });
  }

  /** True when a connection is open and may take a packet now. */
  get isConnected(): boolean {
    return this.socket !== null && this.socket === this.connectedSocket;
  }

  /**
   * Connects (or joins the connect in progress), failing after `timeoutMs`:
   * the half-open socket is then destroyed, so every waiter learns at once.
   */
  connectWithin(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const error = Object.assign(new Error(`no connection within ${timeoutMs} ms`), { code: 'ETIMEDOUT' });
        reject(error);
        (this.socket?.netSocket as { destroy?(e: Error): void } | undefined)?.destroy?.(error);
      }, timeoutMs);
      let connecting: Promise<unknown>;
      try {
        connecting = this.connect();
      } catch (error) {
        // tls.connect() throws at once on unusable options (a malformed key or certificate).
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      connecting
        .then(() => this.handshake)
        .then(
          () => {
            clearTimeout(timer);
            this.connectedSocket = this.socket;
            resolve();
          },
          (error: unknown) => {
            clearTimeout(timer);
            reject(error instanceof Error ? error : new Error(String(error)));
          },
        );
    });
  }

  /**
   * Writes one request packet; replies and failures go to `listener`.
   * Returns a function that forgets the request (cancel, timeout) and says
   * whether its packet had been written.
   */
  request(packet: ReadPacket, listener: RequestListener): () => boolean {
    const socket = this.socket;
    if (socket === null) {
      listener.failed('the connection closed before the request was written', false);
      return NOTHING;
    }
    const outgoing = this.assignPacketId(packet);
    const serialized: unknown = this.serializer.serialize(outgoing);
    const request = new PendingRequest(outgoing.id, listener, () => this.forget(outgoing.id));
    this.pending.set(outgoing.id, request);
    this.routingMap.set(outgoing.id, (reply: WritePacket) => request.reply(reply));
    this.corkUntilNextTick(socket.netSocket);
    socket.sendMessage(serialized, (error?: Error) => request.writeDone(error));
    return () => {
      this.forget(outgoing.id);
      return request.written;
    };
  }

  /** Writes one event packet; `done` hears whether it left this process. */
  event(packet: ReadPacket, done: (error?: Error) => void): void {
    const socket = this.socket;
    if (socket === null) return done(new Error('the connection closed before the event was written'));
    const serialized: unknown = this.serializer.serialize({
      ...packet,
      pattern: this.normalizePattern(packet.pattern),
    });
    this.corkUntilNextTick(socket.netSocket);
    socket.sendMessage(serialized, done);
  }

  override createSocket(): ReturnType<ClientTCP['createSocket']> {
    const socket = super.createSocket();
    // Writes are batched per tick already (see corkUntilNextTick); Nagle's algorithm would hold the
    // next one until the peer ACKs, and a server sends no reply (so no early ACK) to an event.
    (socket.netSocket as { setNoDelay?(noDelay: boolean): unknown }).setNoDelay?.(true);
    this.repliesOnSocket = 0;
    this.handshake = this.tlsOptions ? tlsHandshake(socket.netSocket) : undefined;
    return socket;
  }

  /**
   * Sends issued in the same tick (replies often arrive in batches, and each
   * starts the caller's next send) leave in one write: under load that saves
   * most write system calls, the larger part of a send's CPU.
   */
  private corkUntilNextTick(socket: CorkableSocket): void {
    if (this.corked === socket) return;
    this.corked = socket;
    socket.cork();
    process.nextTick(() => {
      this.corked = undefined;
      socket.uncork();
    });
  }

  override handleResponse(buffer: unknown): Promise<void> {
    this.repliesOnSocket++;
    return super.handleResponse(buffer);
  }

  override handleError(error: unknown): void {
    // JsonSocket reports framing errors (another protocol on the port) as plain strings.
    this.lastSocketError = error instanceof Error ? error.message : String(error);
  }

  override handleClose(): void {
    if (this.pending.size > 0) {
      let cause = this.lastSocketError ? `: ${this.lastSocketError}` : '';
      const received = (this.socket?.netSocket as { bytesRead?: number } | undefined)?.bytesRead ?? 0;
      if (received > 0 && this.repliesOnSocket === 0) {
        cause += ` after ${received} bytes that are not a Nest TCP reply (is the endpoint a Nest TCP microservice?)`;
      }
      const lost = [...this.pending.values()];
      this.pending.clear();
      for (const request of lost) {
        this.routingMap.delete(request.id);
        request.connectionLost(`the connection closed before the answer${cause}`);
      }
    }
    this.lastSocketError = undefined;
    this.connectedSocket = null;
    super.handleClose();
  }

  private forget(id: string): void {
    this.pending.delete(id);
    this.routingMap.delete(id);
  }
}

interface CorkableSocket {
  cork(): void;
  uncork(): void;
}

interface EventEmitterLike {
  once(event: string, listener: (...args: any[]) => void): unknown;
  removeListener(event: string, listener: (...args: any[]) => void): unknown;
}

/** Resolves on `secureConnect`, rejects when the socket fails or closes first. */
function tlsHandshake(socket: EventEmitterLike): Promise<void> {
  const handshake = new Promise<void>((resolve, reject) => {
    const settle = (error?: Error) => {
      socket.removeListener('secureConnect', onSecure);
      socket.removeListener('error', onError);
      socket.removeListener('close', onClose);
      if (error) reject(error);
      else resolve();
    };
    const onSecure = () => settle();
    const onError = (error: unknown) => settle(error instanceof Error ? error : new Error(String(error)));
    const onClose = () => settle(new Error('the connection closed during the TLS handshake'));
    socket.once('secureConnect', onSecure);
    socket.once('error', onError);
    socket.once('close', onClose);
  });
  handshake.catch(() => undefined);
  return handshake;
}

/**
 * One request's transport state. "Written" means the socket's write
 * callback reported success: the bytes are in the kernel, so the server may
 * have them. A connection lost while the write is still pending waits for
 * that callback (a destroyed socket fails its pending writes), so a packet
 * that never left is never reported as written.
 */
class PendingRequest {
  written = false;
  private writeSettled = false;
  private lostReason: string | undefined;
  private done = false;

  constructor(
    readonly id: string,
    private readonly listener: RequestListener,
    private readonly forget: () => void,
  ) {}

  reply(packet: WritePacket): void {
    if (this.done) return;
    this.written = true;
    if (packet.isDisposed || packet.err) this.finish();
    this.listener.reply(packet);
  }

  writeDone(error: Error | undefined): void {
    if (this.writeSettled) return;
    this.writeSettled = true;
    if (error) {
      if (this.done) return;
      this.finish();
      this.listener.failed(`the request could not be written: ${error.message}`, false);
      return;
    }
    this.written = true;
    if (this.lostReason !== undefined) this.fail(this.lostReason);
  }

  connectionLost(reason: string): void {
    if (this.done) return;
    if (this.writeSettled) return this.fail(reason);
    this.lostReason = reason;
    // Should the write callback never come, count the packet as written: never retried, never lost silently.
    setImmediate(() => {
      if (this.writeSettled) return;
      this.written = true;
      this.fail(reason);
    });
  }

  private fail(reason: string): void {
    if (this.done) return;
    this.finish();
    this.listener.failed(reason, this.written);
  }

  private finish(): void {
    this.done = true;
    this.forget();
  }
}
