import * as grpc from '@grpc/grpc-js';
import type { Observable, Subscription } from 'rxjs';
import type { EndpointSet, ServiceClient } from '../../../lib/index.js';
import { greeterPackage, type GreeterStub, type HelloReply } from '../../support/grpc/greeter.js';
import { nextSequence } from './event-sequence.js';

// What fault scenarios observe and do besides processes and load: endpoints$ emissions in order, calls through a
// ServiceClient, a fault held for its duration. (Instance processes: service-process.ts; load: load-generator.ts.)

/** One emission of `endpoints$`, as seen by the client. */
export interface EndpointsEmission {
  at: number;
  /** Order against calls and faults (see {@link nextSequence}). */
  sequence: number;
  revision: number;
  state: EndpointSet['state'];
  resolved: boolean;
  size: number;
  ids: string[];
  addresses: string[];
  reason: string | undefined;
}

/**
 * Records every `endpoints$` emission with its arrival time, and whether the
 * stream ever errored or completed (it must do neither while open).
 *
 * @example
 * const sets = new EndpointRecorder(client.endpoints$); ...; expect(sets.errored).toBeUndefined();
 */
export class EndpointRecorder {
  readonly emissions: EndpointsEmission[] = [];
  errored: unknown;
  completed = false;
  private readonly subscription: Subscription;

  constructor(source: Observable<EndpointSet>) {
    this.subscription = source.subscribe({
      next: (set) =>
        this.emissions.push({
          at: Date.now(),
          sequence: nextSequence(),
          revision: set.revision,
          state: set.state,
          resolved: set.resolved,
          size: set.size,
          ids: set.instances.map((i) => i.id).sort(),
          addresses: set.endpoints.map((e) => e.address).sort(),
          reason: set.reason,
        }),
      error: (error: unknown) => {
        this.errored = error ?? new Error('errored');
      },
      complete: () => {
        this.completed = true;
      },
    });
  }

  latest(): EndpointsEmission | undefined {
    return this.emissions.at(-1);
  }

  /** True when the latest set is `ok` with exactly these addresses (ids differ per backend: DNS makes its own). */
  settledOn(addresses: readonly string[]): boolean {
    const last = this.latest();
    return last !== undefined && last.state === 'ok' && last.addresses.join() === [...addresses].sort().join();
  }

  /** Emissions at or after `since` (ms since epoch). */
  since(since: number): EndpointsEmission[] {
    return this.emissions.filter((e) => e.at >= since);
  }

  /** Emissions after the event with this sequence number (see {@link nextSequence}). */
  after(sequence: number): EndpointsEmission[] {
    return this.emissions.filter((e) => e.sequence > sequence);
  }

  /** The last emission before the event with this sequence number: the set as it stood then. */
  asOf(sequence: number): EndpointsEmission | undefined {
    return this.emissions.findLast((e) => e.sequence < sequence);
  }

  stop(): void {
    this.subscription.unsubscribe();
  }
}

/** One stub per pooled channel: building a grpc-js client per call would cost more than the call. */
const stubs = new WeakMap<grpc.Channel, GreeterStub>();
const insecure = grpc.credentials.createInsecure();

function stubFor(channel: grpc.Channel): GreeterStub {
  let stub = stubs.get(channel);
  if (!stub) {
    stub = new greeterPackage.greeter.Greeter('unused', insecure, {
      channelOverride: channel,
    }) as unknown as GreeterStub;
    stubs.set(channel, stub);
  }
  return stub;
}

/** One unary SayHello through `ServiceClient.call()` (retries as the client is configured); resolves with the answering instance. */
export function helloThrough(client: ServiceClient, timeoutMs = 3_000): Promise<string> {
  return client.call(
    ({ channel, deadline }) =>
      new Promise<string>((resolve, reject) => {
        const stub = stubFor(channel);
        stub.SayHello(
          { name: 'load' },
          new grpc.Metadata(),
          { deadline: deadline ?? Date.now() + timeoutMs },
          (error, reply?: HelloReply) => (error ? reject(error) : resolve(reply!.instance)),
        );
      }),
    { timeoutMs },
  );
}

/**
 * Keeps a fault in place for `ms` (a stall held past a TTL, say). This is
 * the fault's duration, not a way to wait for an effect: effects are awaited
 * with waitFor.
 */
export function holdFault(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
