import { Module, type DynamicModule, type ModuleMetadata } from '@nestjs/common';
import { importOptionalPeer } from '../../core/optional-peer.js';
import type { Discovery } from '../../discovery/discovery.js';
import { discoveryAxiosConfig } from '../../transports/http/axios-config.js';
import type { HttpDispatcherOptions } from '../../transports/http/discovery-http-dispatcher.js';
import { DISCOVERY_INSTANCE } from '../discovery.constants.js';

/**
 * What `DiscoveryHttpModule.register()` takes: an axios request config (as
 * `HttpModule.register()` does: `timeout`, `headers`, `baseURL` ...), and how
 * hosts map to services.
 */
export interface DiscoveryHttpModuleOptions {
  /** Host → service mapping and fallback (see `discovery.httpDispatcher()`). */
  dispatcher?: HttpDispatcherOptions;
  /** Make HttpService available everywhere. */
  global?: boolean;
  /** Any axios request config. */
  [axiosOption: string]: unknown;
}

/** `registerAsync()`'s options, as `HttpModule.registerAsync()` takes them. */
export interface DiscoveryHttpModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  inject?: Array<string | symbol | (abstract new (...args: never[]) => unknown)>;
  useFactory: (...args: never[]) => DiscoveryHttpModuleOptions | Promise<DiscoveryHttpModuleOptions>;
  global?: boolean;
}

const FEATURE = 'DiscoveryHttpModule';

/**
 * `@nestjs/axios`'s HttpModule whose `HttpService` balances requests to
 * service URLs (`http://orders/api/...`) over the discovered endpoints —
 * same Observables, same axios — through `discovery.httpDispatcher()`.
 * Needs `DiscoveryModule` (global, as by default) and the optional packages
 * `@nestjs/axios` and `axios`.
 *
 * @example
 * @Module({ imports: [DiscoveryModule.forRoot({ backend: 'local' }), DiscoveryHttpModule.register({ timeout: 2_000 })] })
 */
@Module({})
export class DiscoveryHttpModule {
  /** HttpService with this axios config. */
  static register(options: DiscoveryHttpModuleOptions = {}): Promise<DynamicModule> {
    return DiscoveryHttpModule.registerAsync({ useFactory: () => options, global: options.global });
  }

  /** HttpService with an axios config from a factory (ConfigService, ...). */
  static async registerAsync(options: DiscoveryHttpModuleAsyncOptions): Promise<DynamicModule> {
    await importOptionalPeer('axios', FEATURE, () => import('axios'));
    const { HttpModule } = await importOptionalPeer('@nestjs/axios', FEATURE, () => import('@nestjs/axios'));
    const factory = options.useFactory as (...args: unknown[]) => ReturnType<typeof options.useFactory>;
    const http = HttpModule.registerAsync({
      imports: options.imports,
      inject: [DISCOVERY_INSTANCE, ...(options.inject ?? [])],
      useFactory: async (discovery: Discovery, ...args: unknown[]) => {
        const { dispatcher, global: _global, ...axiosConfig } = await factory(...args);
        return discoveryAxiosConfig(discovery.httpDispatcher(dispatcher), axiosConfig);
      },
    });
    return { module: DiscoveryHttpModule, global: options.global, imports: [http], exports: [http] };
  }
}
