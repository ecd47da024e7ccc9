import { ConfigurationError } from '../core/errors.js';
import type { ServiceClientOptions } from '../client/client-options.js';
import type { ServiceClient } from '../client/service-client.js';

/** Where a client's options were declared (for conflict messages). */
export interface ClientDeclaration {
  options: ServiceClientOptions;
  /** e.g. `DiscoveryModule.forFeature() in OrdersModule`, `forRoot({ clients })`. */
  source: string;
}

/**
 * The clients of one Discovery. A client is shared by every caller asking
 * with the same options — all of them, credentials and protos included (by
 * identity for objects) — so a client asking for TLS never gets one built
 * without it. Each service name may have one DECLARED option set (forFeature,
 * forRoot clients): that is the client `discovery:///<name>` and
 * `@InjectServiceClient('<name>')` use, whichever was created first.
 */
export class ClientCatalog {
  private readonly clients = new Map<string, ServiceClient>();
  private readonly declared = new Map<string, ClientDeclaration>();
  private readonly objectIds = new WeakMap<object, number>();
  private nextObjectId = 0;

  /**
   * Declares per-service options. The same options twice are fine; two
   * different option sets for one name are a ConfigurationError naming both.
   */
  declare(declarations: readonly ClientDeclaration[]): void {
    for (const declaration of declarations) {
      const name = declaration.options.name;
      const earlier = this.declared.get(name);
      if (!earlier) {
        this.declared.set(name, declaration);
        continue;
      }
      if (this.keyOf(earlier.options) === this.keyOf(declaration.options)) continue;
      throw ConfigurationError.single(
        `clients.${name}`,
        undefined,
        `one option set per service: '${name}' is declared by ${earlier.source} and, differently, by ${declaration.source}`,
      );
    }
  }

  /** The declared options of a service, or just its name. */
  optionsFor(name: string): ServiceClientOptions {
    return this.declared.get(name)?.options ?? { name };
  }

  /** The client for exactly these options, made by `create` on first use. */
  get(options: ServiceClientOptions, create: () => ServiceClient): ServiceClient {
    const key = this.keyOf(options);
    let client = this.clients.get(key);
    if (!client) {
      client = create();
      this.clients.set(key, client);
    }
    return client;
  }

  /** Every service declared or with a client. */
  names(): string[] {
    const names = new Set(this.declared.keys());
    for (const client of this.clients.values()) names.add(client.service);
    return [...names];
  }

  list(): ServiceClient[] {
    return [...this.clients.values()];
  }

  clear(): void {
    this.clients.clear();
    this.declared.clear();
  }

  /** A key equal for equal options: plain values by content, objects (credentials, loaded protos) by identity. */
  private keyOf(options: ServiceClientOptions): string {
    return JSON.stringify(options, (key, value: unknown) => {
      if (typeof value === 'function') return `#function${this.idOf(value)}`;
      if (value === undefined || value === null || typeof value !== 'object' || Array.isArray(value)) return value;
      // A loaded proto package holds constructors: the same package is the same object.
      const plain = Object.getPrototypeOf(value) === Object.prototype && key !== 'grpcObject';
      if (plain) return sortKeys(value as Record<string, unknown>);
      return `#object${this.idOf(value)}`;
    });
  }

  private idOf(value: object): number {
    let id = this.objectIds.get(value);
    if (id === undefined) this.objectIds.set(value, (id = ++this.nextObjectId));
    return id;
  }
}

function sortKeys(value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) if (value[key] !== undefined) out[key] = value[key];
  return out;
}
