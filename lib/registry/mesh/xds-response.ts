import { XdsResourceError } from './xds-load-assignment.js';
import {
  RESOURCE_WRAPPER_TYPE_URL,
  type AnyMessage,
  type DiscoveryResponseMessage,
  type XdsProtos,
} from './xds-protos.js';
import type { XdsResourceType } from './xds-resource-type.js';

/** What one xDS response holds for the names a client asked for. */
export interface DecodedResponse {
  /** Valid resources by name, with their bytes (to skip identical resends). */
  readonly received: Map<string, { bytes: Buffer; value: unknown }>;
  /** Names whose resource was sent but is invalid (reported in `errors`). */
  readonly invalid: Set<string>;
  /** True when some entry could not be named (so absence proves nothing). */
  readonly unnamed: boolean;
  /** Why the response must be NACKed; empty when it is valid. */
  readonly errors: string[];
}

/**
 * Decodes the resources of one response of `type`: unwraps Resource
 * envelopes, decodes and validates each resource the client `wanted`,
 * ignores the others, and collects what makes the response invalid.
 * `previousOf` gives the version of a resource in use, for the parser to
 * reuse what did not change.
 *
 * @example
 * const { received, errors } = decodeResponse(response, CLUSTER_RESOURCE, (name) => watched.has(name), protos);
 */
export function decodeResponse(
  response: DiscoveryResponseMessage,
  type: XdsResourceType<unknown>,
  wanted: (name: string) => boolean,
  protos: XdsProtos,
  previousOf: (name: string) => unknown = () => undefined,
): DecodedResponse {
  const errors: string[] = [];
  const received = new Map<string, { bytes: Buffer; value: unknown }>();
  const invalid = new Set<string>();
  let unnamed = false;
  (response.resources ?? []).forEach((wrapped, i) => {
    const any = unwrap(wrapped, i, errors, protos);
    if (!any) {
      unnamed = true;
      return;
    }
    if (any.type_url !== type.typeUrl) {
      errors.push(`resources[${i}]: a ${any.type_url} resource in a ${type.typeUrl} response`);
      unnamed = true;
      return;
    }
    const read = type.fromBytes?.(any.value, protos);
    let message: unknown;
    if (read === undefined) {
      try {
        message = protos.decoder(type.typeUrl)!(any.value);
      } catch (error) {
        errors.push(`resources[${i}]: not a valid ${type.label} resource (${(error as Error).message})`);
        unnamed = true;
        return;
      }
    }
    const name = read ? read.name : type.nameOf(message);
    if (!wanted(name)) return; // never asked for: ignored
    if (received.has(name) || invalid.has(name)) {
      errors.push(`${type.label} resource '${name}' appears twice`);
      return;
    }
    try {
      const previous = previousOf(name);
      received.set(name, { bytes: any.value, value: read ? read.parse(previous) : type.parse(message, previous) });
    } catch (error) {
      if (!(error instanceof XdsResourceError)) throw error;
      invalid.add(name);
      errors.push(`${type.label} resource '${name}': ${error.message}`);
    }
  });
  return { received, invalid, unnamed, errors };
}

/** Unwraps `envoy.service.discovery.v3.Resource` envelopes; undefined (with an error noted) when that fails. */
function unwrap(any: AnyMessage, index: number, errors: string[], protos: XdsProtos): AnyMessage | undefined {
  if (any.type_url !== RESOURCE_WRAPPER_TYPE_URL) return any;
  try {
    const wrapper = protos.decoder(RESOURCE_WRAPPER_TYPE_URL)!(any.value) as {
      resource?: AnyMessage | null;
    };
    if (wrapper.resource) return wrapper.resource;
    errors.push(`resources[${index}]: an empty Resource wrapper`);
  } catch (error) {
    errors.push(`resources[${index}]: not a valid Resource wrapper (${(error as Error).message})`);
  }
  return undefined;
}
