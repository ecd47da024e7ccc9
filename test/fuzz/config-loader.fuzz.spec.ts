import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as stringifyToml } from 'smol-toml';
import { afterAll, beforeAll, describe, expect, vi, type MockInstance } from 'vitest';
import { stringify as stringifyYaml } from 'yaml';
import {
  BACKEND_NAMES,
  ConfigurationError,
  isResolvedDiscoveryConfig,
  parseDiscoveryConfig,
  STRATEGY_NAMES,
  type ResolvedDiscoveryConfig,
} from '../../lib/core/index.js';
import { reliabilityTest, ResultsFile, type ResultSpec } from '../faults/support/reliability-results.js';
import { fuzzParameters } from './support/fuzz-settings.js';

type Format = 'toml' | 'json' | 'yaml';
const FORMATS: Format[] = ['toml', 'json', 'yaml'];
const results = new ResultsFile('fuzz-config-loader');
const spec = (scenario: string, title: string, asserted: string): ResultSpec => ({
  suite: 'fuzz',
  scenario,
  title,
  backend: 'any',
  asserted,
});

/** Node timers hold at most this many ms; a longer delay fires after 1 ms instead. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Runs the loader and says what came out; anything but a config or a ConfigurationError fails the property. */
function load(text: string, format: Format): { config: ResolvedDiscoveryConfig } | { error: ConfigurationError } {
  try {
    return { config: parseDiscoveryConfig(text, format, `fuzz.${format}`) };
  } catch (error) {
    if (error instanceof ConfigurationError) return { error };
    throw new Error(
      `the ${format} loader threw ${(error as Error)?.constructor?.name}: ${(error as Error)?.message}\ninput: ${JSON.stringify(text).slice(0, 500)}`,
      { cause: error },
    );
  }
}

/** What every resolved configuration guarantees, whatever the input was. */
function checkResolved(config: ResolvedDiscoveryConfig): void {
  expect(isResolvedDiscoveryConfig(config)).toBe(true);
  expect(BACKEND_NAMES).toContain(config.backend);
  expect(config.backend).not.toBe('xds');
  expect(STRATEGY_NAMES as readonly string[]).toContain(config.loadBalance);
  const { ttlMs, heartbeatMs } = config.registration;
  expect(Number.isFinite(ttlMs) && Number.isFinite(heartbeatMs)).toBe(true);
  // (> 0 is its own known-bug property below: tiny values round to 0 ms.)
  expect(heartbeatMs).toBeGreaterThanOrEqual(0);
  expect(heartbeatMs).toBeLessThan(ttlMs);
  if (config.backend !== 'memory') expect(ttlMs).toBeGreaterThanOrEqual(2_000);
  expect(config.refreshIntervalMs).toBeGreaterThan(0);
  expect(config.healthCheck.timeoutMs).toBeLessThan(config.healthCheck.intervalMs);
  expect(config.namespace.default.length).toBeGreaterThan(0);
  expect(typeof config.backendConfig).toBe('object');
}

/** What every ConfigurationError carries: at least one issue, each with a message, all quoted in the text. */
function checkError(error: ConfigurationError): void {
  expect(error.issues.length).toBeGreaterThan(0);
  for (const issue of error.issues) {
    expect(typeof issue.message).toBe('string');
    expect(issue.message.length).toBeGreaterThan(0);
    expect(error.message).toContain(issue.path || '<root>');
  }
}

function checkOutcome(outcome: ReturnType<typeof load>): void {
  if ('config' in outcome) checkResolved(outcome.config);
  else checkError(outcome.error);
}

/** Serialises a document in a format; undefined when that format cannot express it (e.g. null in TOML). */
function serialise(document: unknown, format: Format): string | undefined {
  try {
    return format === 'json'
      ? JSON.stringify(document)
      : format === 'yaml'
        ? stringifyYaml(document)
        : stringifyToml(document);
  } catch {
    return undefined;
  }
}

// Keys the loader knows (snake_case, as users write them), plus keys that
// have tripped up object handling elsewhere.
const KNOWN_KEYS = [
  'backend',
  'backend_config',
  'namespace',
  'version',
  'tag_filters',
  'load_balance',
  'hash_header',
  'health_check',
  'refresh_interval',
  'registration',
  'endpoints',
  'ttl',
  'auth',
  'tls',
  'prefix',
  'layout',
  'dial_timeout',
  'request_timeout',
  'strict',
  'url',
  'token',
  'datacenter',
  'check',
  'wait',
  'domain',
  'addresses',
  'nameservers',
  'srv',
  'port',
  'ttl_floor',
  'ttl_ceiling',
  'timeout',
  'tries',
  'xds_server',
  'node_id',
  'service_type',
  'dir',
  'store',
  'default',
  'separator',
  'format',
  'enable_routing',
  'key',
  'value',
  'pattern',
  'enabled',
  'interval',
  'failure_threshold',
  'success_threshold',
  'heartbeat_interval',
  'deregister_on_shutdown',
  'drain_ms',
  'kind',
  'path',
  'username',
  'password',
  'ca',
  'cert',
  'template',
  'mode',
  'tags',
  'custom',
  'meta',
  'constructor',
  'toString',
  'hasOwnProperty',
  'a_b',
  '_x',
  'x_',
  'x__y',
  'Backend',
  'LOAD_BALANCE',
];
const key = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...KNOWN_KEYS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
);
const scalar = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.integer({ min: -100_000, max: 100_000 }),
  fc.double({ noNaN: false }),
  fc.boolean(),
  fc.constantFrom(
    '',
    ' ',
    '0',
    'true',
    'etcd',
    'consul',
    'dns',
    'mesh',
    'xds',
    'local',
    'memory',
    'static',
    'round_robin',
    'consistent_hash',
    'p2c_ewma',
    'http://127.0.0.1:2379',
    '127.0.0.1:8080',
    '[::1]:53',
    '/health',
    'v1.0.0',
    '^1.2',
    'semver',
    'plain',
    'grpc',
    'http',
    'exact',
    'prefix',
    'regex',
    'exists',
    '(',
    0,
    -0,
    1,
    2,
    3,
    0.5,
    1e9,
    1e308,
    Number.MAX_SAFE_INTEGER,
  ),
);
const value: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', maxDepth: 4 },
    scalar,
    fc.array(tie('v'), { maxLength: 4 }),
    fc.dictionary(key, tie('v'), { maxKeys: 5 }),
  ),
})).v;

/** Valid base documents of every backend, so mutations reach the deep checks (TTL vs heartbeat, per-backend schemas). */
const BASES: Record<string, unknown>[] = [
  { backend: 'local', backend_config: { dir: '/tmp/sy', service_type: 'orders' } },
  { backend: 'memory' },
  { backend: 'static', backend_config: { addresses: ['127.0.0.1:8080'] } },
  {
    backend: 'etcd',
    refresh_interval: 30,
    load_balance: 'consistent_hash',
    backend_config: { endpoints: ['http://localhost:2379'], service_type: 'signaling-online', ttl: 30 },
    namespace: { default: 'production', separator: '/' },
    version: { default: 'v1.0.0', format: 'semver', enable_routing: true },
  },
  {
    backend: 'consul',
    backend_config: { url: 'http://localhost:8500', token: 't', check: { kind: 'ttl' } },
    registration: { ttl: 9, heartbeat_interval: 3 },
  },
  {
    backend: 'dns',
    refresh_interval: 60,
    load_balance: 'random',
    backend_config: { domain: 'local', addresses: ['127.0.0.1:8080'], service_type: 'storage-reader' },
  },
  { backend: 'mesh', backend_config: { xds_server: 'http://localhost:8080', service_type: 'session' } },
  {
    backend: 'etcd',
    health_check: { enabled: true, interval: 10, timeout: 5, kind: 'http', path: '/health' },
    tag_filters: [{ key: 'tier', value: 'gold' }],
  },
];

// Mostly sensible durations, sometimes any number: enough valid documents to reach the cross-field checks.
const seconds = fc.oneof(
  { weight: 1, arbitrary: fc.double({ min: -1, max: 1e6, noNaN: true }) },
  { weight: 6, arbitrary: fc.constantFrom(0.5, 1, 2, 3, 10, 30, 90, 120) },
);
/** Usually `good`, now and then `bad`. */
function mostly<T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<T>): fc.Arbitrary<T> {
  return fc.oneof({ weight: 8, arbitrary: good }, { weight: 1, arbitrary: bad });
}

/** Field-aware documents: mostly well-typed values, so most of them get past the schema to the cross-field checks. */
const wellTyped = fc
  .record(
    {
      backend: fc.constantFrom(...BACKEND_NAMES),
      load_balance: fc.constantFrom(...STRATEGY_NAMES, 'fastest'),
      refresh_interval: seconds,
      registration: fc.record(
        {
          ttl: seconds,
          heartbeat_interval: seconds,
          drain_ms: fc.integer({ min: -1, max: 10_000 }),
          enabled: fc.boolean(),
        },
        { requiredKeys: [] },
      ),
      namespace: fc.record(
        {
          default: fc.string({ minLength: 1, maxLength: 8 }),
          separator: mostly(fc.constantFrom('/', '.', '::'), fc.constant('')),
        },
        { requiredKeys: [] },
      ),
      version: fc.record(
        {
          default: fc.constantFrom('v1.0.0', '1.2', 'x'),
          format: fc.constantFrom('semver', 'plain'),
          enable_routing: fc.boolean(),
        },
        { requiredKeys: [] },
      ),
      health_check: fc.record(
        {
          enabled: fc.boolean(),
          interval: mostly(fc.constantFrom(10, 20, 60), seconds),
          timeout: mostly(fc.constantFrom(1, 2, 5), seconds),
          failure_threshold: mostly(fc.integer({ min: 1, max: 5 }), fc.integer({ min: -1, max: 0 })),
          path: mostly(fc.constant('/health'), fc.constant('health')),
          kind: mostly(fc.constantFrom('grpc', 'http'), fc.constant('tcp')),
        },
        { requiredKeys: [] },
      ),
      tag_filters: fc.array(
        fc.record(
          {
            key: fc.string({ minLength: 1, maxLength: 5 }),
            value: fc.string({ maxLength: 5 }),
            pattern: fc.constantFrom('exact', 'prefix', 'regex', 'exists'),
          },
          { requiredKeys: ['key'] },
        ),
        { maxLength: 2 },
      ),
    },
    { requiredKeys: [] },
  )
  .chain((document) =>
    // Usually (3 in 4) with a valid backend_config for the chosen backend, sometimes with none: every
    // default, which the mesh and dns backends refuse (they need a server or a domain).
    fc
      .nat(3)
      .map((n) => n > 0)
      .map((withBackendConfig) => {
        const base = BASES.find((b) => b.backend === document.backend);
        return base && withBackendConfig ? { ...document, backend_config: base.backend_config } : document;
      }),
  );

/** A path into a document and a value to put there (or undefined to delete). */
const mutation = fc.tuple(fc.array(key, { minLength: 1, maxLength: 3 }), fc.option(value, { nil: undefined }));

function mutate(base: Record<string, unknown>, edits: Array<[string[], unknown]>): Record<string, unknown> {
  const document = structuredClone(base);
  for (const [path, replacement] of edits) {
    let node: Record<string, unknown> = document;
    for (const segment of path.slice(0, -1)) {
      const next = node[segment];
      if (!next || typeof next !== 'object' || Array.isArray(next)) node[segment] = {};
      node = node[segment] as Record<string, unknown>;
    }
    const last = path.at(-1)!;
    if (replacement === undefined) delete node[last];
    else
      Object.defineProperty(node, last, { value: replacement, enumerable: true, writable: true, configurable: true });
  }
  return document;
}

const seedFiles = ['etcd.toml', 'consul.toml', 'dns.toml', 'mesh.toml'].map((f) =>
  readFileSync(join(import.meta.dirname, '../fixtures', f), 'utf8'),
);

describe('fuzz: configuration loader (toml, json, yaml)', () => {
  // The yaml parser reports unknown directives and tags as process warnings; thousands of them would bury the test output.
  let warnings: MockInstance | undefined;
  beforeAll(() => {
    warnings = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  });
  afterAll(() => warnings?.mockRestore());

  reliabilityTest(
    results,
    spec(
      'config-any-text',
      'config loader: arbitrary text',
      'any string in TOML, JSON or YAML yields a resolved config or a ConfigurationError naming the problem (never another exception)',
    ),
    (details) => {
      let runs = 0;
      fc.assert(
        fc.property(
          fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 200 })),
          fc.constantFrom(...FORMATS),
          (text, format) => {
            runs++;
            checkOutcome(load(text, format));
          },
        ),
        fuzzParameters(0xc0f1, 400),
      );
      details.runs = runs;
    },
  );

  reliabilityTest(
    results,
    spec(
      'config-mutated-seeds',
      'config loader: mutated seed files',
      'the four seed examples with random byte edits load or fail with a ConfigurationError',
    ),
    (details) => {
      let runs = 0;
      const edit = fc.tuple(
        fc.nat(),
        fc.constantFrom('delete', 'insert', 'duplicate-line'),
        fc.string({ maxLength: 3 }),
      );
      fc.assert(
        fc.property(fc.constantFrom(...seedFiles), fc.array(edit, { minLength: 1, maxLength: 4 }), (text, edits) => {
          runs++;
          let mutated = text;
          for (const [at, kind, chars] of edits) {
            const i = at % (mutated.length + 1);
            if (kind === 'delete') mutated = mutated.slice(0, i) + mutated.slice(i + 1);
            else if (kind === 'insert') mutated = mutated.slice(0, i) + chars + mutated.slice(i);
            else {
              const lines = mutated.split('\n');
              const line = i % lines.length;
              lines.splice(line, 0, lines[line]);
              mutated = lines.join('\n');
            }
          }
          checkOutcome(load(mutated, 'toml'));
        }),
        fuzzParameters(0xc0f2, 400),
      );
      details.runs = runs;
    },
  );

  reliabilityTest(
    results,
    spec(
      'config-structured',
      'config loader: structured documents',
      'documents built from known keys and random values, in every format and with or without [discovery], resolve to a consistent config or a ConfigurationError',
    ),
    (details) => {
      let runs = 0;
      let resolved = 0;
      fc.assert(
        fc.property(
          fc.oneof(
            { weight: 1, arbitrary: fc.dictionary(key, value, { maxKeys: 6 }) },
            { weight: 2, arbitrary: wellTyped },
            {
              weight: 3,
              arbitrary: fc
                .tuple(fc.constantFrom(...BASES), fc.array(mutation, { minLength: 1, maxLength: 2 }))
                .map(([b, m]) => mutate(b, m)),
            },
          ),
          fc.boolean(),
          fc.constantFrom(...FORMATS),
          (document, nested, format) => {
            const text = serialise(nested ? { discovery: document } : document, format);
            if (text === undefined) return;
            runs++;
            const outcome = load(text, format);
            if ('config' in outcome) resolved++;
            checkOutcome(outcome);
          },
        ),
        fuzzParameters(0xc0f3, 500),
      );
      details.runs = runs;
      details.resolved = resolved;
      // The generator must reach valid configurations too, or the deep checks were never exercised.
      // Most documents are meant to be invalid (random values in known keys), and since backends
      // validate their backend_config at load time, mesh and dns documents without one are too:
      // one valid document in twenty is the floor (about one in ten resolve with this seed).
      expect(resolved).toBeGreaterThan(runs / 20);
    },
  );

  reliabilityTest(
    results,
    spec(
      'config-error-paths',
      'config loader: error paths as written',
      'every issue of a ConfigurationError for a snake_case document names the field in snake_case, as the user wrote it',
    ),
    () => {
      fc.assert(
        fc.property(wellTyped, fc.boolean(), (document, nested) => {
          const outcome = load(JSON.stringify(nested ? { discovery: document } : document), 'json');
          if ('config' in outcome) return;
          for (const issue of outcome.error.issues) expect(issue.path).not.toMatch(/[a-z][A-Z]/);
        }),
        fuzzParameters(0xc0f6, 300),
      );
      // The shortest input that shows it: a default (timeout 5 s) checked against a given interval.
      const outcome = load(JSON.stringify({ health_check: { interval: 2 } }), 'json');
      expect('error' in outcome && outcome.error.message).toContain('health_check.timeout');
    },
  );

  reliabilityTest(
    results,
    spec(
      'config-hostile-yaml',
      'config loader: hostile YAML',
      'alias bombs, deep nesting and huge numbers are refused quickly with a ConfigurationError',
    ),
    () => {
      const bomb = [
        'a: &a ["x","x","x","x","x","x","x","x","x"]',
        ...Array.from(
          { length: 9 },
          (_, i) =>
            `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`,
        ),
      ].join('\n');
      const deep = `${'['.repeat(5_000)}${']'.repeat(5_000)}`;
      for (const [text, format] of [
        [bomb, 'yaml'],
        [`discovery: ${deep}`, 'yaml'],
        [`x = ${deep}`, 'toml'],
        ['discovery:\n  refresh_interval: 1e400', 'yaml'],
        ['{"discovery":{"__proto__":{"backend":"etcd"}}}', 'json'],
      ] as const) {
        const outcome = load(text, format);
        checkOutcome(outcome);
        if (text.includes('__proto__'))
          expect('error' in outcome && outcome.error.message).toMatch(/__proto__: unknown key/);
      }
    },
  );

  reliabilityTest(
    results,
    spec(
      'config-deep-nesting',
      'config loader: deeply nested JSON',
      'a JSON document nested thousands of levels deep (top level or inside a field) is refused with a ConfigurationError, not a stack overflow',
    ),
    () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 3_000, max: 20_000 }),
          fc.constantFrom(
            '%',
            '{"discovery":{"backend":%}}',
            '{"discovery":{"tag_filters":%}}',
            '{"backend_config":{"addresses":%}}',
          ),
          (depth, template) => {
            const deep = `${'['.repeat(depth)}${']'.repeat(depth)}`;
            checkOutcome(load(template.replace('%', deep), 'json'));
          },
        ),
        fuzzParameters(0xc0f5, 20),
      );
    },
  );

  reliabilityTest(
    results,
    spec(
      'config-timer-range',
      'config loader: durations fit a timer',
      'every resolved duration (TTL, heartbeat, refresh, health interval) is at least 1 ms and fits a Node timer (< 2^31 ms), so none turns into a 1 ms busy loop',
    ),
    () => {
      const extreme = fc.oneof(
        fc.double({ min: 2_147_484, max: 1e300, noNaN: true }),
        fc.integer({ min: 2_147_484, max: 2 ** 40 }),
        fc.double({ min: Number.MIN_VALUE, max: 0.0009, noNaN: true }),
      );
      fc.assert(
        fc.property(
          extreme,
          fc.constantFrom('refresh_interval', 'ttl', 'heartbeat_interval', 'health_interval'),
          (seconds, field) => {
            const document =
              field === 'refresh_interval'
                ? { backend: 'local', refresh_interval: seconds }
                : field === 'ttl'
                  ? { backend: 'local', registration: { ttl: seconds } }
                  : field === 'heartbeat_interval'
                    ? { backend: 'local', registration: { heartbeat_interval: seconds } }
                    : { backend: 'local', health_check: { interval: seconds, timeout: Math.min(1, seconds / 2) } };
            const outcome = load(JSON.stringify(document), 'json');
            if ('error' in outcome) return;
            const c = outcome.config;
            for (const ms of [
              c.refreshIntervalMs,
              c.registration.ttlMs,
              c.registration.heartbeatMs,
              c.healthCheck.intervalMs,
            ]) {
              expect(ms).toBeGreaterThanOrEqual(1);
              expect(ms).toBeLessThanOrEqual(MAX_TIMER_MS);
            }
          },
        ),
        fuzzParameters(0xc0f4, 50),
      );
    },
  );
});
