import type { Dispatcher } from 'undici';
import type { FetchDispatcher } from './discovery-http-dispatcher.js';

/** The axios request config keys this module sets (the rest is yours). */
export interface AxiosDispatchConfig {
  adapter: 'fetch';
  fetchOptions: Record<string, unknown> & { dispatcher: FetchDispatcher | Dispatcher };
}

/**
 * An axios config whose requests go through `dispatcher` (from
 * `discovery.httpDispatcher()`): axios's own fetch adapter, with the
 * dispatcher handed to fetch. `http://orders/...` is then balanced like
 * `fetch` is — same pools, retries, outcomes — and axios stays axios
 * (interceptors, transforms, `validateStatus`, errors).
 *
 * @example
 * const orders = axios.create(discoveryAxiosConfig(discovery.httpDispatcher(), { baseURL: 'http://orders', timeout: 2_000 }));
 */
export function discoveryAxiosConfig<T extends object>(
  dispatcher: FetchDispatcher | Dispatcher,
  config: T = {} as T,
): Omit<T, 'adapter' | 'fetchOptions'> & AxiosDispatchConfig {
  const own = (config as { fetchOptions?: Record<string, unknown> }).fetchOptions;
  return { ...config, adapter: 'fetch', fetchOptions: { ...own, dispatcher } };
}
