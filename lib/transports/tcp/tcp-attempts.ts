import type { ReadPacket } from '@nestjs/microservices';
import type { EndpointTcpClient } from './endpoint-tcp-client.js';
import { TcpAttemptCancelledError, TcpErrorReply, TcpTransportError } from './tcp-outcome.js';

/** A send()'s "stop": set when its subscriber unsubscribes; ends the attempt in progress. */
export class Cancellation {
  cancelled = false;
  private abortCurrent: (() => void) | undefined;

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.abortCurrent?.();
    this.abortCurrent = undefined;
  }

  /** `abort` runs if the send is cancelled while the current attempt waits. */
  watch(abort: (() => void) | undefined): void {
    this.abortCurrent = abort;
  }
}

/** What one attempt needs to know besides its connection and packet. */
export interface AttemptContext {
  service: string;
  /** `send('orders.get')` or `emit('order.created')`, for messages. */
  call: string;
  deadline: Date | undefined;
  connectTimeoutMs: number;
  cancellation: Cancellation;
}

/**
 * One attempt of a send() on one endpoint: connects if needed, writes the
 * request, hands each reply value to `onValue` and resolves when the last
 * one came (a stream answers with several). Rejects with a
 * {@link TcpTransportError} (saying whether the packet was written), a
 * {@link TcpErrorReply} (the server's error) or a cancellation.
 */
export function sendAttempt(
  connection: EndpointTcpClient,
  packet: ReadPacket,
  context: AttemptContext,
  onValue: (response: unknown) => void,
): Promise<void> {
  if (context.cancellation.cancelled) return Promise.reject(new TcpAttemptCancelledError('cancelled'));
  if (connection.isConnected) return writeRequest(connection, packet, context, onValue);
  return connect(connection, context).then(() => writeRequest(connection, packet, context, onValue));
}

/** One attempt of an emit() on one endpoint: resolves once the event's bytes left this process. */
export function emitAttempt(connection: EndpointTcpClient, packet: ReadPacket, context: AttemptContext): Promise<void> {
  const write = () =>
    new Promise<void>((resolve, reject) =>
      connection.event(packet, (error) =>
        error
          ? reject(
              new TcpTransportError(
                `'${context.service}' endpoint ${connection.endpoint.address} did not take ${context.call}: ${error.message} (not written)`,
                connection.endpoint.address,
                false,
                false,
                { cause: error },
              ),
            )
          : resolve(),
      ),
    );
  if (connection.isConnected) return write();
  return connect(connection, context).then(write);
}

function connect(connection: EndpointTcpClient, context: AttemptContext): Promise<void> {
  const remaining = context.deadline ? context.deadline.getTime() - Date.now() : Infinity;
  const timeoutMs = Math.max(1, Math.min(context.connectTimeoutMs, remaining));
  const address = connection.endpoint.address;
  return connection.connectWithin(timeoutMs).then(
    () => {
      if (context.cancellation.cancelled) throw new TcpAttemptCancelledError('cancelled');
    },
    (error: Error & { code?: string }) => {
      throw new TcpTransportError(
        `'${context.service}' endpoint ${address} could not be reached for ${context.call}: ${error.message} (not written)`,
        address,
        false,
        error.code === 'ETIMEDOUT',
        { cause: error },
      );
    },
  );
}

function writeRequest(
  connection: EndpointTcpClient,
  packet: ReadPacket,
  context: AttemptContext,
  onValue: (response: unknown) => void,
): Promise<void> {
  const address = connection.endpoint.address;
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      context.cancellation.watch(undefined);
    };
    const fail = (error: Error) => {
      if (settled) return;
      finish();
      reject(error);
    };
    const forget = connection.request(packet, {
      reply: ({ err, response, isDisposed }) => {
        if (settled) return;
        if (err) return fail(new TcpErrorReply(err));
        if (isDisposed) {
          if (response !== undefined) onValue(response);
          finish();
          return resolve();
        }
        onValue(response);
      },
      failed: (reason, written) =>
        fail(
          new TcpTransportError(
            written
              ? `'${context.service}' endpoint ${address} did not answer ${context.call}: ${reason} (written: retried only if the pattern is idempotent)`
              : `'${context.service}' endpoint ${address} did not take ${context.call}: ${reason} (not written)`,
            address,
            written,
            false,
          ),
        ),
    });
    if (settled) return;
    context.cancellation.watch(() => {
      forget();
      fail(new TcpAttemptCancelledError('cancelled'));
    });
    if (context.deadline !== undefined) {
      timer = setTimeout(
        () => {
          const written = forget();
          fail(
            new TcpTransportError(
              `'${context.service}' endpoint ${address} did not answer ${context.call} before its deadline`,
              address,
              written,
              true,
            ),
          );
        },
        Math.max(0, context.deadline.getTime() - Date.now()),
      );
    }
  });
}
