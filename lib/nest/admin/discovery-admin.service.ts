import { Inject, Injectable, Optional, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { renderAdminPage } from '../../admin/admin-page.js';
import { collectAdminState } from '../../admin/admin-state.js';
import { ConfigurationError } from '../../core/errors.js';
import type { Discovery } from '../../discovery/discovery.js';
import type { ServiceRegistry } from '../../discovery/service-registry.js';
import { DISCOVERY_INSTANCE, DISCOVERY_MODULE_OPTIONS, SERVICE_REGISTRY } from '../discovery.constants.js';
import type { DiscoveryModuleOptions } from '../interfaces/discovery-module-options.interface.js';

/**
 * Mounts the opt-in admin view on the app's HTTP server:
 * `GET <path>` (a self-refreshing page) and `GET <path>/state.json`.
 * Runs in onModuleInit, after Nest registered its own routes, so a path
 * that collides with one of them fails bootstrap instead of being shadowed.
 */
@Injectable()
export class DiscoveryAdmin implements OnModuleInit {
  constructor(
    @Inject(DISCOVERY_INSTANCE) private readonly discovery: Discovery,
    @Inject(SERVICE_REGISTRY) private readonly self: ServiceRegistry,
    @Inject(DISCOVERY_MODULE_OPTIONS) private readonly options: DiscoveryModuleOptions,
    @Optional() private readonly adapterHost?: HttpAdapterHost,
  ) {}

  onModuleInit(): void {
    const admin = this.options.admin;
    if (!admin) return;
    const path = normalizeAdminPath(admin.path);
    const adapter = this.adapterHost?.httpAdapter;
    if (!adapter) {
      this.discovery.logger.warn(`admin view at '${path}' needs an HTTP application (NestFactory.create); not mounted`);
      return;
    }
    const statePath = `${path}/state.json`;
    const instance: unknown = adapter.getInstance();
    for (const candidate of [path, statePath]) {
      if (routeExists(instance, candidate)) {
        throw ConfigurationError.single(
          'admin.path',
          admin.path,
          `a path no route of the app uses (GET ${candidate} is taken)`,
        );
      }
    }
    const page = renderAdminPage(statePath, admin.refreshMs ?? 2_000);
    adapter.get(path, (_req: unknown, res: unknown) => {
      adapter.setHeader(res, 'content-type', 'text/html; charset=utf-8');
      adapter.setHeader(res, 'cache-control', 'no-store');
      adapter.reply(res, page, 200);
    });
    adapter.get(statePath, (_req: unknown, res: unknown) => {
      adapter.setHeader(res, 'content-type', 'application/json; charset=utf-8');
      adapter.setHeader(res, 'cache-control', 'no-store');
      adapter.reply(res, JSON.stringify(collectAdminState(this.discovery, this.self)), 200);
    });
    this.discovery.logger.log(`admin view mounted at ${path} (state at ${statePath})`);
  }
}

function normalizeAdminPath(path: unknown): string {
  if (typeof path !== 'string' || !/^\/[A-Za-z0-9._~\-/]*$/.test(path)) {
    throw ConfigurationError.single(
      'admin.path',
      path,
      'a URL path starting with "/" (letters, digits, "-", "_", ".", "~", "/")',
    );
  }
  const trimmed = path.replace(/\/+$/, '');
  if (!trimmed) throw ConfigurationError.single('admin.path', path, 'a path other than "/"');
  return trimmed;
}

/** Is there already a GET route for `path`? (Express 4/5 and Fastify; other adapters are not checked.) */
function routeExists(instance: unknown, path: string): boolean {
  const app = instance as {
    router?: { stack?: unknown[] };
    _router?: { stack?: unknown[] };
    hasRoute?: (opts: { method: string; url: string }) => boolean;
  };
  if (typeof app.hasRoute === 'function') {
    try {
      return app.hasRoute({ method: 'GET', url: path });
    } catch {
      return false;
    }
  }
  const stack = (app.router?.stack ?? app._router?.stack ?? []) as Array<{
    route?: { path?: unknown; methods?: Record<string, boolean> };
    match?: (p: string) => boolean;
  }>;
  return stack.some((layer) => {
    if (!layer.route || !(layer.route.methods?.get || layer.route.methods?._all)) return false;
    if (layer.route.path === path) return true;
    try {
      return typeof layer.match === 'function' && layer.match(path);
    } catch {
      return false;
    }
  });
}
