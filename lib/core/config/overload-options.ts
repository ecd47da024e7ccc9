import { z } from 'zod';
import { ConfigurationError } from '../errors.js';
import { seconds } from './config-fields.js';

// Overload protection and tail latency: one section each in the
// configuration (`[discovery.slow_start]` ...), the same keys per client
// (`forFeature([{ name, slowStart: { window: 30 } }])`), merged over the
// module's. Durations in seconds, as everywhere in the configuration.

const percent = z.number().min(0).max(100);

const slowStart = z.strictObject({
  /** Ramp length, s; 0 turns slow start off (the default). */
  window: z.number().min(0).max(3_600),
  /** Envoy's aggression: 1 ramps linearly, higher ramps faster at first. */
  aggression: z.number().min(0.1).max(10),
  /** Share an endpoint starts at, percent of its full weight. */
  minWeightPercent: percent,
});

const circuitBreaker = z.strictObject({
  /** Calls in flight to the service at once; 0 = no limit. */
  maxRequests: z.number().int().min(0),
  /** Calls in flight to one endpoint at once; 0 = no limit. */
  maxRequestsPerEndpoint: z.number().int().min(0),
  /** Calls waiting for a first endpoint at once; 0 = no limit. */
  maxPending: z.number().int().min(0),
});

const throttling = z.strictObject({
  enabled: z.boolean(),
  /** The SRE book's K: shed when requests exceed K times the accepted ones. */
  k: z.number().min(1).max(10),
  /** The window requests and accepts are counted over, s. */
  window: seconds,
  /** Requests the window must hold before anything is shed. */
  minRequests: z.number().int().min(1),
});

const hedging = z.strictObject({
  /** Hedge calls marked idempotent after this long (s), or after the p95 of recent latency. 0 = off. */
  delay: z.union([z.number().min(0).max(60), z.literal('p95')]),
  /** Attempts in all, the first included. */
  maxAttempts: z.number().int().min(2).max(5),
  /**
   * Abort the attempts that lost (their `signal`). Off by default: resetting
   * many streams a second makes servers behind nghttp2 (Node, Envoy) close
   * the connection (HTTP/2 rapid-reset protection).
   */
  cancel: z.boolean(),
  /** gRPC methods (`package.Service/Method`, or `package.Service` for all) that grpc-js hedges on discovery:/// channels. */
  grpcMethods: z.array(z.string().regex(/^[\w.]+(\/\w+)?$/, 'package.Service or package.Service/Method')),
});

const priority = z.strictObject({
  /** Envoy's overprovisioning factor: a level keeps all traffic while healthy share × this ≥ 100 %. */
  overprovisioningFactor: z.number().min(1).max(10),
  /** Instance tag holding an explicit priority (0 = highest); when present it wins over zone and region. */
  tag: z.string().min(1),
});

const subsetting = z.strictObject({
  /** Endpoints each client connects to; 0 = all (the default). */
  size: z.number().int().min(0),
  /** This client's index among the clients sharing the service (0, 1, 2 ...); default a hash of the own instance. */
  clientIndex: z.number().int().min(0).optional(),
});

/** The defaults: slow start, hedging and subsetting off; breaker limits as Envoy's; throttling on. */
export const OVERLOAD_DEFAULTS = {
  slowStart: { window: 0, aggression: 1, minWeightPercent: 10 },
  circuitBreaker: { maxRequests: 1024, maxRequestsPerEndpoint: 0, maxPending: 1024 },
  throttling: { enabled: true, k: 2, window: 120, minRequests: 10 },
  hedging: { delay: 0, maxAttempts: 2, cancel: false, grpcMethods: [] as string[] },
  priority: { overprovisioningFactor: 1.4, tag: 'priority' },
  subsetting: { size: 0, clientIndex: undefined as number | undefined },
} as const;

/** The sections as they appear in the configuration (and per client): every key optional. */
export const overloadConfigShape = {
  slowStart: slowStart.partial().optional(),
  circuitBreaker: circuitBreaker.partial().optional(),
  throttling: throttling.partial().optional(),
  hedging: hedging.partial().optional(),
  priority: priority.partial().optional(),
  subsetting: subsetting.partial().optional(),
};

const overloadOverrides = z.strictObject(overloadConfigShape);

/** What the configuration or a client may say about overload. */
export type OverloadOptions = z.input<typeof overloadOverrides>;

/** Overload settings after defaults, durations in ms. */
export interface OverloadSettings {
  slowStart: { windowMs: number; aggression: number; minWeightPercent: number };
  circuitBreaker: { maxRequests: number; maxRequestsPerEndpoint: number; maxPending: number };
  throttling: { enabled: boolean; k: number; windowMs: number; minRequests: number };
  hedging: { delayMs: number | 'p95'; maxAttempts: number; cancel: boolean; grpcMethods: readonly string[] };
  priority: { overprovisioningFactor: number; tag: string };
  subsetting: { size: number; clientIndex: number | undefined };
}

/**
 * Resolves overload settings: the module's sections over the defaults, then a
 * client's own sections over those. Throws a ConfigurationError naming the
 * field (`clients.orders.slowStart.window`) for a bad per-client value.
 *
 * @example
 * const settings = resolveOverload(config.overload, { slowStart: { window: 30 } }, 'clients.orders');
 */
export function resolveOverload(
  module: OverloadOptions | OverloadSettings | undefined,
  client?: OverloadOptions,
  path = 'clients',
): OverloadSettings {
  const base = module && isSettings(module) ? module : toSettings(merge(undefined, module));
  if (!client) return base;
  const parsed = overloadOverrides.safeParse(client, { reportInput: true });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw ConfigurationError.single(
      [path, ...issue.path.map(String)].join('.'),
      (issue as { input?: unknown }).input,
      issue.message,
    );
  }
  return toSettings(merge(fromSettings(base), parsed.data));
}

type Sections = { -readonly [K in keyof typeof OVERLOAD_DEFAULTS]: Record<string, unknown> };

function merge(base: Sections | undefined, overrides: OverloadOptions | undefined): Sections {
  const start = base ?? OVERLOAD_DEFAULTS;
  const out = {} as Sections;
  for (const key of Object.keys(OVERLOAD_DEFAULTS) as Array<keyof Sections>) {
    const own = (overrides as Record<string, Record<string, unknown> | undefined> | undefined)?.[key] ?? {};
    const defined = Object.fromEntries(Object.entries(own).filter(([, v]) => v !== undefined));
    out[key] = { ...start[key], ...defined };
  }
  return out;
}

function toSettings(s: Sections): OverloadSettings {
  const slow = s.slowStart as typeof OVERLOAD_DEFAULTS.slowStart;
  const thr = s.throttling as typeof OVERLOAD_DEFAULTS.throttling;
  const hedge = s.hedging as {
    delay: number | 'p95';
    maxAttempts: number;
    cancel: boolean;
    grpcMethods: readonly string[];
  };
  const settings: OverloadSettings = {
    slowStart: {
      windowMs: Math.round(slow.window * 1000),
      aggression: slow.aggression,
      minWeightPercent: slow.minWeightPercent,
    },
    circuitBreaker: { ...(s.circuitBreaker as OverloadSettings['circuitBreaker']) },
    throttling: {
      enabled: thr.enabled,
      k: thr.k,
      windowMs: Math.round(thr.window * 1000),
      minRequests: thr.minRequests,
    },
    hedging: {
      delayMs: hedge.delay === 'p95' ? 'p95' : Math.round(hedge.delay * 1000),
      maxAttempts: hedge.maxAttempts,
      cancel: hedge.cancel,
      grpcMethods: hedge.grpcMethods,
    },
    priority: { ...(s.priority as OverloadSettings['priority']) },
    subsetting: { ...(s.subsetting as OverloadSettings['subsetting']) },
  };
  Object.defineProperty(settings, SETTINGS, { value: true, enumerable: false });
  return settings;
}

function fromSettings(s: OverloadSettings): Sections {
  return {
    slowStart: {
      window: s.slowStart.windowMs / 1000,
      aggression: s.slowStart.aggression,
      minWeightPercent: s.slowStart.minWeightPercent,
    },
    circuitBreaker: { ...s.circuitBreaker },
    throttling: {
      enabled: s.throttling.enabled,
      k: s.throttling.k,
      window: s.throttling.windowMs / 1000,
      minRequests: s.throttling.minRequests,
    },
    hedging: {
      delay: s.hedging.delayMs === 'p95' ? 'p95' : s.hedging.delayMs / 1000,
      maxAttempts: s.hedging.maxAttempts,
      cancel: s.hedging.cancel,
      grpcMethods: s.hedging.grpcMethods,
    },
    priority: { ...s.priority },
    subsetting: { ...s.subsetting },
  };
}

const SETTINGS = Symbol.for('switchyard.overloadSettings');

function isSettings(value: object): value is OverloadSettings {
  return (value as Record<symbol, unknown>)[SETTINGS] === true;
}
