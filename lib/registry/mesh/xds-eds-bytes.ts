import {
  parseLoadAssignment,
  XdsResourceError,
  type LbEndpointMessage,
  type LocalityLbEndpointsMessage,
  type MeshLoadAssignment,
  type ParsedPlace,
} from './xds-load-assignment.js';
import { LB_ENDPOINT_TYPE_URL, LOCALITY_TYPE_URL, type XdsProtos } from './xds-protos.js';
import { KeptBytes } from './kept-bytes.js';
import { forEachField, WireError } from './xds-wire.js';

/** One `LocalityLbEndpoints` as laid out in the bytes. */
interface GroupLayout {
  /** Byte range of `locality`, or -1 when absent. */
  localityStart: number;
  localityEnd: number;
  /** `load_balancing_weight.value`; undefined when the wrapper is absent. */
  weight: number | undefined;
  priority: number;
  /** Start and end of each `lb_endpoints` entry, in order. */
  lbs: number[];
}

/** The bytes of an assignment's latest version (see {@link KeptBytes}), and which version they are. */
class Slab {
  private readonly kept = new KeptBytes();
  /** The version whose bytes are kept; undefined while being written. */
  private owner: Layout | undefined;

  /** The bytes `layout` was read from, or undefined when another version's replaced them. */
  bytesOf(layout: Layout): Buffer | undefined {
    return this.owner === layout ? this.kept.bytes : undefined;
  }

  keep(bytes: Buffer, layout: Layout): void {
    this.owner = undefined;
    this.kept.keep(bytes);
    this.owner = layout;
  }
}

/** What a version of an assignment was made of, kept to compare the next version with. */
interface Layout {
  readonly slab: Slab;
  readonly groups: readonly GroupLayout[];
  readonly localities: ReadonlyArray<LocalityLbEndpointsMessage['locality']>;
  /** What each LbEndpoint was parsed into, by group and place. */
  readonly places: ReadonlyArray<ReadonlyArray<ParsedPlace>>;
}

/** A layout whose bytes are still in its slab. */
type ReadableLayout = Layout & { readonly bytes: Buffer };

/** Stands in the message for an LbEndpoint taken as parsed before (the parser does not read it). */
const UNCHANGED: LbEndpointMessage = Object.freeze({});

/** A `LocalityLbEndpoints` field this reader does not follow (LEDS, an inline endpoint list): decode it all. */
class NotHandled extends Error {}

const layouts = new WeakMap<MeshLoadAssignment, Layout>();

/**
 * Reads a ClusterLoadAssignment so that a new version costs what changed:
 * the bytes are walked without decoding; each `LbEndpoint` whose bytes
 * equal those of an endpoint of the previous version (under the same
 * locality) is taken as that one was parsed, without decoding or parsing;
 * only the others are decoded. A 1 % churn of 1,000 endpoints decodes ten.
 *
 * Returns the resource's name and how to parse it against the version in
 * use; undefined when the bytes hold what this reader does not follow
 * (the caller decodes the whole message, which also reports malformed
 * bytes).
 *
 * @example
 * const read = readLoadAssignment(any.value, protos); read?.parse(previous);
 */
export function readLoadAssignment(
  bytes: Buffer,
  protos: XdsProtos,
): { name: string; parse(previous?: MeshLoadAssignment): MeshLoadAssignment } | undefined {
  const decodeLb = protos.decoder(LB_ENDPOINT_TYPE_URL) as ((bytes: Buffer) => LbEndpointMessage) | undefined;
  const decodeLocality = protos.decoder(LOCALITY_TYPE_URL) as
    ((bytes: Buffer) => LocalityLbEndpointsMessage['locality']) | undefined;
  if (!decodeLb || !decodeLocality) return undefined;
  let name = '';
  const groups: GroupLayout[] = [];
  try {
    forEachField(bytes, (field, start, end) => {
      if (field === 1) name = bytes.toString('utf8', start, end);
      else if (field === 2) groups.push(readGroup(bytes, start, end));
    });
  } catch (error) {
    if (error instanceof WireError || error instanceof NotHandled) return undefined;
    throw error;
  }
  return {
    name,
    parse(previous) {
      const layout = previous && layouts.get(previous);
      // The version compared against: its bytes are gone if another version parsed against the same one since.
      const beforeBytes = layout?.slab.bytesOf(layout);
      const before: ReadableLayout | undefined = beforeBytes && { ...layout!, bytes: beforeBytes };
      const localities: Array<LocalityLbEndpointsMessage['locality']> = [];
      const prior: Array<Array<ParsedPlace | undefined>> = [];
      const message = {
        cluster_name: name,
        endpoints: groups.map((group, g): LocalityLbEndpointsMessage => {
          const was = before?.groups[g];
          let locality: LocalityLbEndpointsMessage['locality'] = null;
          if (group.localityStart >= 0) {
            locality =
              before &&
              was &&
              was.localityStart >= 0 &&
              sameBytes(bytes, group.localityStart, group.localityEnd, before.bytes, was.localityStart, was.localityEnd)
                ? before.localities[g]
                : decodeOrRefuse(
                    decodeLocality,
                    bytes.subarray(group.localityStart, group.localityEnd),
                    `endpoints[${g}].locality`,
                  );
          }
          localities.push(locality);
          // Under another locality, every endpoint parses anew.
          const same = before && before.localities[g] === locality ? before : undefined;
          const { messages, places } = endpointMessages(bytes, group, same, g, decodeLb);
          prior.push(places);
          return {
            locality,
            lb_endpoints: messages,
            load_balancing_weight: group.weight === undefined ? null : { value: group.weight },
            priority: group.priority,
          };
        }),
      };
      const out: ParsedPlace[][] = [];
      const assignment = parseLoadAssignment(message, '', previous, { prior, out });
      const kept: Layout = { slab: layout?.slab ?? new Slab(), groups, localities, places: out };
      kept.slab.keep(bytes, kept);
      layouts.set(assignment, kept);
      return assignment;
    },
  };
}

function readGroup(bytes: Buffer, from: number, to: number): GroupLayout {
  const group: GroupLayout = { localityStart: -1, localityEnd: -1, weight: undefined, priority: 0, lbs: [] };
  forEachField(
    bytes,
    (field, start, end) => {
      if (field === 1) {
        group.localityStart = start;
        group.localityEnd = end;
      } else if (field === 2) group.lbs.push(start, end);
      else if (field === 3) {
        let value = 0;
        forEachField(
          bytes,
          () => undefined,
          (inner, v) => inner === 1 && (value = v),
          start,
          end,
        );
        group.weight = value;
      } else if (field === 5 || field === 7 || field === 8) throw new NotHandled();
    },
    (field, value) => {
      if (field === 5) group.priority = value;
      else if (field === 1 || field === 2 || field === 3) throw new NotHandled();
    },
    from,
    to,
  );
  return group;
}

/**
 * The decoded `lb_endpoints` of group `g`: the previous version's objects
 * where the bytes are equal. Each endpoint is compared with the previous
 * version's endpoints after the last one matched, up to {@link LOOK_AHEAD}
 * of them (a few removed in between). Past {@link MISSES_BEFORE_INDEX}
 * endpoints not found there the order has broken (a reshuffle, not a
 * churn), and the previous endpoints are indexed by a hash of their bytes
 * so that every endpoint is found wherever it is; indexing costs a hash of
 * every previous endpoint, more than decoding a few new ones. Only what is
 * not found at all is decoded, once the walk is over.
 */
function endpointMessages(
  bytes: Buffer,
  group: GroupLayout,
  before: ReadableLayout | undefined,
  g: number,
  decode: (bytes: Buffer) => LbEndpointMessage,
): { messages: LbEndpointMessage[]; places: Array<ParsedPlace | undefined> } {
  const count = group.lbs.length / 2;
  const messages = new Array<LbEndpointMessage>(count);
  const places = new Array<ParsedPlace | undefined>(count);
  const was = before?.groups[g];
  const wasPlaces = before?.places[g];
  let index: Map<number, number[]> | undefined;
  let misses = 0;
  /** Endpoints not found (yet): decoded once the walk is over. */
  let missed: number[] | undefined;
  let cursor = 0;
  const wasCount = was ? was.lbs.length / 2 : 0;
  for (let e = 0; e < count; e++) {
    const start = group.lbs[2 * e];
    const end = group.lbs[2 * e + 1];
    let found = -1;
    if (before && was && wasPlaces) {
      const ahead = Math.min(wasCount, cursor + LOOK_AHEAD);
      for (let k = cursor; k < ahead; k++) {
        if (sameBytes(bytes, start, end, before.bytes, was.lbs[2 * k], was.lbs[2 * k + 1])) {
          found = k;
          break;
        }
      }
      if (found < 0 && (index !== undefined || ++misses > MISSES_BEFORE_INDEX)) {
        if (index === undefined) {
          index = new Map();
          for (let k = 0; k < wasCount; k++) {
            const hash = hashOf(before.bytes, was.lbs[2 * k], was.lbs[2 * k + 1]);
            const same = index.get(hash);
            if (same) same.push(k);
            else index.set(hash, [k]);
          }
        }
        found = indexed(index, bytes, start, end, before.bytes, was);
      }
    }
    if (found >= 0) {
      messages[e] = UNCHANGED;
      places[e] = wasPlaces![found];
      if (found >= cursor) cursor = found + 1;
    } else (missed ??= []).push(e);
  }
  // Those not found ahead before the index was built are looked up in it; what is left changed, and is decoded
  // (in order, so the first that does not decode is the one named).
  for (const e of missed ?? NONE) {
    const start = group.lbs[2 * e];
    const end = group.lbs[2 * e + 1];
    const k = index && was ? indexed(index, bytes, start, end, before.bytes, was) : -1;
    if (k >= 0) {
      messages[e] = UNCHANGED;
      places[e] = wasPlaces![k];
    } else messages[e] = decodeOrRefuse(decode, bytes.subarray(start, end), `endpoints[${g}].lb_endpoints[${e}]`);
  }
  return { messages, places };
}

/** The place of the previous version's endpoint with these bytes, or -1. */
function indexed(
  index: Map<number, number[]>,
  bytes: Buffer,
  start: number,
  end: number,
  wasBytes: Buffer,
  was: GroupLayout,
): number {
  for (const k of index.get(hashOf(bytes, start, end)) ?? NONE)
    if (sameBytes(bytes, start, end, wasBytes, was.lbs[2 * k], was.lbs[2 * k + 1])) return k;
  return -1;
}

const NONE: readonly number[] = [];
/** How many of the previous version's endpoints past the last match an endpoint is compared with. */
const LOOK_AHEAD = 16;
/** Endpoints not found ahead (new, or moved) before the previous ones are indexed by hash. */
const MISSES_BEFORE_INDEX = 16;

/** FNV-1a over a byte range (32 bits). */
function hashOf(bytes: Buffer, start: number, end: number): number {
  let hash = 0x811c9dc5;
  for (let i = start; i < end; i++) hash = Math.imul(hash ^ bytes[i], 0x01000193);
  return hash;
}

/** A message that does not decode makes the resource invalid (NACKed), as a whole-message decode would. */
function decodeOrRefuse<T>(decode: (bytes: Buffer) => T, bytes: Buffer, where: string): T {
  try {
    return decode(bytes);
  } catch (error) {
    throw new XdsResourceError(`${where}: does not decode (${(error as Error).message})`);
  }
}

function sameBytes(a: Buffer, aStart: number, aEnd: number, b: Buffer, bStart: number, bEnd: number): boolean {
  return aEnd - aStart === bEnd - bStart && a.compare(b, bStart, bEnd, aStart, aEnd) === 0;
}
