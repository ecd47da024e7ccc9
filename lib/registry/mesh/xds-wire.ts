import type { AnyMessage, DiscoveryResponseMessage } from './xds-protos.js';

/** Bytes that are not the protobuf they should be (the caller falls back to the full decoder). */
export class WireError extends Error {}

const LENGTH_DELIMITED = 2;

/**
 * Reads one protobuf message field by field without decoding nested
 * messages: `visit` gets every length-delimited field as a byte range;
 * `onVarint` (when given) every varint field's value; fixed fields are
 * skipped. `from`/`to` read a message that sits inside `bytes`. Throws
 * WireError on truncated bytes or group fields (wire types 3 and 4, unused
 * by xDS).
 */
export function forEachField(
  bytes: Buffer,
  visit: (field: number, start: number, end: number) => void,
  onVarint?: (field: number, value: number) => void,
  from = 0,
  to = bytes.length,
): void {
  let pos = from;
  while (pos < to) {
    let key: number;
    [key, pos] = readVarint(bytes, pos);
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (field === 0) throw new WireError('field number 0');
    switch (wireType) {
      case 0: {
        let value: number;
        [value, pos] = readVarint(bytes, pos);
        onVarint?.(field, value);
        break;
      }
      case 1:
        pos += 8;
        break;
      case LENGTH_DELIMITED: {
        let length: number;
        [length, pos] = readVarint(bytes, pos);
        const end = pos + length;
        if (end > to) throw new WireError('truncated field');
        visit(field, pos, end);
        pos = end;
        break;
      }
      case 5:
        pos += 4;
        break;
      default:
        throw new WireError(`wire type ${wireType}`);
    }
    if (pos > to) throw new WireError('truncated field');
  }
}

function readVarint(bytes: Buffer, pos: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= bytes.length) throw new WireError('truncated varint');
    const byte = bytes[pos++];
    // Lengths and field keys fit well below 2^53; larger varints are only skipped.
    value += (byte & 0x7f) * scale;
    scale *= 128;
    if (byte < 0x80) return [value, pos];
  }
  throw new WireError('varint longer than 10 bytes');
}

function readAny(bytes: Buffer): AnyMessage {
  const any: AnyMessage = { type_url: '', value: Buffer.alloc(0) };
  forEachField(bytes, (field, start, end) => {
    if (field === 1) any.type_url = bytes.toString('utf8', start, end);
    else if (field === 2) any.value = bytes.subarray(start, end);
  });
  return any;
}

/**
 * Decodes a `DiscoveryResponse` far enough for the ADS client (version,
 * type URL, nonce and each resource as an undecoded Any), without the
 * generic decoder: the resources stay bytes until someone needs them.
 * Undefined when the bytes are not a well-formed message (the caller then
 * uses the full decoder, which reports the problem).
 *
 * @example
 * const response = peekResponse(bytes) ?? protos.ads.responseDeserialize(bytes);
 */
export function peekResponse(bytes: Buffer): DiscoveryResponseMessage | undefined {
  const response: DiscoveryResponseMessage = { version_info: '', resources: [], type_url: '', nonce: '' };
  try {
    forEachField(bytes, (field, start, end) => {
      if (field === 1) response.version_info = bytes.toString('utf8', start, end);
      else if (field === 2) response.resources.push(readAny(bytes.subarray(start, end)));
      else if (field === 4) response.type_url = bytes.toString('utf8', start, end);
      else if (field === 5) response.nonce = bytes.toString('utf8', start, end);
    });
  } catch (error) {
    if (error instanceof WireError) return undefined;
    throw error;
  }
  return response;
}

/**
 * The name of a resource of `typeUrl` held in `any` (unwrapping a
 * `Resource` envelope), read from string field `nameField` of its bytes
 * without decoding the rest; undefined when that cannot be told cheaply
 * (another type, malformed bytes).
 *
 * @example
 * peekResourceName(response.resources[0], ENDPOINT_TYPE_URL, 1); // 'orders'
 */
export function peekResourceName(
  any: AnyMessage,
  typeUrl: string,
  nameField: number,
  wrapperTypeUrl: string,
): string | undefined {
  try {
    let resource = any;
    if (resource.type_url === wrapperTypeUrl) {
      let inner: AnyMessage | undefined;
      forEachField(resource.value, (field, start, end) => {
        if (field === 2) inner = readAny(resource.value.subarray(start, end));
      });
      if (!inner) return undefined;
      resource = inner;
    }
    if (resource.type_url !== typeUrl) return undefined;
    let name = '';
    const bytes = resource.value;
    forEachField(bytes, (field, start, end) => {
      if (field === nameField) name = bytes.toString('utf8', start, end);
    });
    return name;
  } catch (error) {
    if (error instanceof WireError) return undefined;
    throw error;
  }
}

/**
 * Which responses of a batch received together a later response of the
 * batch makes moot: response i is superseded when it names resources
 * (`names[i]`, undefined when unknown) all of which a later response of
 * the same type names again. Applying only the others gives the same
 * resources as applying all in order, provided the later ones are valid
 * (the ADS client applies the superseded ones after all when a later one
 * is NACKed).
 *
 * @example
 * supersededIn([{ typeUrl: EDS, names: ['a'] }, { typeUrl: EDS, names: ['a'] }]); // [true, false]
 */
export function supersededIn(
  batch: ReadonlyArray<{ typeUrl: string; names: readonly string[] | undefined }>,
): boolean[] {
  const later = new Map<string, Set<string>>();
  const out = new Array<boolean>(batch.length).fill(false);
  for (let i = batch.length - 1; i >= 0; i--) {
    const { typeUrl, names } = batch[i];
    if (names === undefined) continue;
    const seen = later.get(typeUrl);
    if (seen && names.every((name) => seen.has(name))) out[i] = true;
    if (seen) for (const name of names) seen.add(name);
    else later.set(typeUrl, new Set(names));
  }
  return out;
}
