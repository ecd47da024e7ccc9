/**
 * Services named by @InjectServiceClient anywhere in the app. Decorators run
 * when their classes are defined, which is before the root module's
 * `DiscoveryModule.forRoot*()` is evaluated, so the root module can provide
 * a client for each of them without a `forFeature` per service.
 */
const requested = new Set<string>();

export function recordRequestedClient(service: string): void {
  requested.add(service);
}

export function requestedClients(): string[] {
  return [...requested];
}
