import type { EndpointSet } from '../core/endpoint-set.js';
import type { ServiceInstance } from '../core/service-instance.js';
import type { DiscoveryLogger } from '../registry/registry.interface.js';

/** Where the CLI writes; tests and embedders can pass their own. */
export interface CliStreams {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export const processStreams: CliStreams = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
};

/**
 * Every line the CLI prints goes through here: secrets are replaced by
 * `[redacted]` whatever produced the text (our messages, a backend's error,
 * a registry warning), and `--json` switches stdout to JSON.
 *
 * @example
 * const out = new CliOutput(processStreams, { json: false, secrets: ['s3cret'] }); out.line('hello');
 */
export class CliOutput {
  private secrets: string[] = [];

  constructor(
    private readonly streams: CliStreams,
    readonly options: { json: boolean; verbose: boolean },
  ) {}

  /** Adds values that must never be printed (longest first, so one secret inside another is still covered). */
  addSecrets(secrets: readonly string[]): void {
    this.secrets = [...new Set([...this.secrets, ...secrets.filter((s) => s.length > 0)])].sort(
      (a, b) => b.length - a.length,
    );
  }

  redact(text: string): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join('[redacted]');
    // Also the URL-encoded form (a token may travel in a query string or URL in someone's message).
    for (const secret of this.secrets) {
      const encoded = encodeURIComponent(secret);
      if (encoded !== secret) out = out.split(encoded).join('[redacted]');
    }
    return out;
  }

  /** One line on stdout (human output). */
  line(text = ''): void {
    this.streams.stdout(this.redact(`${text}\n`));
  }

  /** One JSON document on stdout: pretty for documents, compact for event streams. */
  json(value: unknown, compact = false): void {
    this.streams.stdout(this.redact(`${JSON.stringify(value, null, compact ? undefined : 2)}\n`));
  }

  /** A message on stderr. */
  error(text: string): void {
    this.streams.stderr(this.redact(`${text.endsWith('\n') ? text : `${text}\n`}`));
  }

  /** The logger handed to registries: warnings to stderr (unless muted), info only with --verbose. */
  logger(muted: () => boolean = () => false): DiscoveryLogger {
    return {
      log: (m) => {
        if (this.options.verbose) this.error(`info: ${m}`);
      },
      warn: (m) => {
        if (this.options.verbose || !muted()) this.error(`warning: ${m}`);
      },
      error: (m) => {
        if (this.options.verbose || !muted()) this.error(`error: ${m}`);
      },
      debug: (m) => {
        if (this.options.verbose) this.error(`debug: ${m}`);
      },
    };
  }
}

/** An instance as the CLI shows it in JSON. */
export interface InstanceView {
  id: string;
  service: string;
  address: string;
  host: string;
  port: number;
  namespace: string;
  version: string;
  zone: string | null;
  region: string | null;
  weight: number;
  healthy: boolean;
  /** Weight 0: listed, never picked by clients. */
  drained: boolean;
  tags: Record<string, string>;
}

/** The JSON shape of an instance. */
export function instanceView(instance: ServiceInstance): InstanceView {
  return {
    id: instance.id,
    service: instance.service,
    address: instance.address,
    host: instance.host,
    port: instance.port,
    namespace: instance.namespace,
    version: instance.version,
    zone: instance.metadata.zone ?? null,
    region: instance.metadata.region ?? null,
    weight: instance.weight,
    healthy: instance.healthy,
    drained: instance.weight === 0,
    tags: { ...instance.tags },
  };
}

/** `version=v1 zone=a weight=2 tags=k=v,k2=v2`: the fields worth a glance, for one-line output. */
export function describeInstance(instance: ServiceInstance): string {
  const parts = [`${instance.id} ${instance.address}`];
  if (instance.version) parts.push(`version=${instance.version}`);
  if (instance.metadata.zone) parts.push(`zone=${instance.metadata.zone}`);
  parts.push(`weight=${instance.weight}`);
  if (instance.weight === 0) parts.push('drained');
  if (!instance.healthy) parts.push('healthy=no');
  const tags = Object.entries(instance.tags);
  if (tags.length) parts.push(`tags=${tags.map(([k, v]) => `${k}=${v}`).join(',')}`);
  return parts.join(' ');
}

/** A one-line summary of a set's state: `ok, 2 instances`, `stale (reason), 2 last known instances`. */
export function describeSetState(set: EndpointSet): string {
  const count = `${set.size} instance${set.size === 1 ? '' : 's'}`;
  if (set.state === 'stale')
    return `stale (${set.reason ?? 'registry unreachable'}), serving ${set.size} last known instance${set.size === 1 ? '' : 's'}`;
  if (set.state === 'empty') return 'empty (the registry knows no instance)';
  return `ok, ${count}`;
}

/**
 * Renders rows as an aligned text table with a header.
 *
 * @example
 * formatTable(['ID', 'ADDRESS'], [['a', '127.0.0.1:1']]);
 */
export function formatTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const render = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [render(header), ...rows.map(render)].join('\n');
}
