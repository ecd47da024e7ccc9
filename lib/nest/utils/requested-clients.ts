import type { ModulesContainer } from '@nestjs/core';
import type { ServiceClientOptions } from '../../client/client-options.js';

/**
 * Services named by @InjectServiceClient, per class. Decorators run when
 * their classes are defined, before the root module's `forRoot*()` is
 * evaluated, so the root module can offer a client for each name without a
 * `forFeature` per service. Which names an APP uses is decided per app, by
 * looking at the classes of its own modules (see {@link clientsUsedBy}), so
 * two apps in one process never create each other's clients.
 */
const byClass = new WeakMap<object, Set<string>>();
const allNames = new Set<string>();

/** Called by the decorator: `target` is the class (constructor parameter) or its prototype (property). */
export function recordRequestedClient(target: object, service: string): void {
  const owner = typeof target === 'function' ? target : (target as { constructor: object }).constructor;
  let names = byClass.get(owner);
  if (!names) byClass.set(owner, (names = new Set()));
  names.add(service);
  allNames.add(service);
}

/** Every name any class in the process asked for: the root module offers a provider for each. */
export function requestedClients(): string[] {
  return [...allNames];
}

/** Options declared by one `DiscoveryModule.forFeature()`, found by the root module when the app starts. */
export class FeatureClients {
  constructor(readonly clients: readonly ServiceClientOptions[]) {}
}

const usedByContainer = new WeakMap<ModulesContainer, Set<string>>();

/** The service names that classes of THIS app (its modules' providers, controllers and injectables) inject. */
export function clientsUsedBy(container: ModulesContainer): Set<string> {
  let used = usedByContainer.get(container);
  if (used) return used;
  used = new Set<string>();
  for (const module of container.values()) {
    for (const wrappers of [module.providers, module.controllers, module.injectables]) {
      for (const wrapper of wrappers.values()) {
        // Walk up the class chain: an injected base class's constructor counts too.
        for (let type: unknown = wrapper.metatype; typeof type === 'function'; type = Object.getPrototypeOf(type)) {
          for (const name of byClass.get(type) ?? []) used.add(name);
        }
      }
    }
  }
  usedByContainer.set(container, used);
  return used;
}

/** Every forFeature() declaration of this app, with the name of the module that imports it. */
export function featureDeclarations(
  container: ModulesContainer,
): Array<{ options: ServiceClientOptions; source: string }> {
  const out: Array<{ options: ServiceClientOptions; source: string }> = [];
  for (const module of container.values()) {
    for (const wrapper of module.providers.values()) {
      const value: unknown = wrapper.instance;
      if (!(value instanceof FeatureClients)) continue;
      const host = [...container.values()].find((m) => m.imports.has(module))?.metatype?.name ?? 'a module';
      for (const options of value.clients) {
        out.push({ options, source: `DiscoveryModule.forFeature() in ${host}` });
      }
    }
  }
  return out;
}
