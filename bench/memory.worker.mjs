// Retained heap per endpoint for one service of 10,000 endpoints: the
// instances, the EndpointSet snapshot, the load records and each
// strategy's picker (grpc channels excluded). Heap used after full GCs,
// before and after building each part, in a fresh process. Prints one JSON line.
import { LoadTracker, getStrategy, listStrategies } from '../dist/balancing/index.js';
import { EndpointSet } from '../dist/core/index.js';
import { SERVICE, benchInstance } from './support/fixtures.mjs';

const { endpoints: n = 10_000 } = JSON.parse(process.argv[2] ?? '{}');
if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc');

/** JS heap plus typed-array backing stores (held outside the JS heap), after full collections. */
function heapUsed() {
  globalThis.gc();
  globalThis.gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

/** Runs everything measured below once on a small set, so compiled code and lazily built tables are not counted as per-endpoint memory. */
function warmUp() {
  const small = EndpointSet.of(
    SERVICE,
    Array.from({ length: 100 }, (_, i) => benchInstance(n + i)),
  );
  const loads = new LoadTracker();
  for (const endpoint of small.endpoints) loads.load(endpoint);
  for (const name of listStrategies()) getStrategy(name).build(small.endpoints, { loads, random: Math.random });
}

warmUp();
const keep = [];
const h0 = heapUsed();
const instances = Array.from({ length: n }, (_, i) => benchInstance(i));
keep.push(instances);
const h1 = heapUsed();
const set = EndpointSet.of(SERVICE, instances);
keep.push(set);
const h2 = heapUsed();
// What the call path leaves behind: one load record per endpoint that took a call.
const loads = new LoadTracker();
for (const endpoint of set.endpoints) loads.load(endpoint);
keep.push(loads);
const h3 = heapUsed();
// A picker is small next to the heap's accounting noise (a few hundred KB):
// several copies of each are measured together and the figure divided.
const COPIES = 5;
const pickers = {};
for (const name of listStrategies()) {
  const before = heapUsed();
  for (let copy = 0; copy < COPIES; copy++)
    keep.push(getStrategy(name).build(set.endpoints, { loads, random: Math.random }));
  pickers[name] = (heapUsed() - before) / (COPIES * n);
}
const shared = (h3 - h0) / n;
const out = {
  endpoints: n,
  instances_bytes_per_endpoint: (h1 - h0) / n,
  endpoint_set_bytes_per_endpoint: (h2 - h1) / n,
  load_records_bytes_per_endpoint: (h3 - h2) / n,
  picker_bytes_per_endpoint: pickers,
  total_bytes_per_endpoint: Object.fromEntries(Object.entries(pickers).map(([name, bytes]) => [name, shared + bytes])),
};
if (keep.length < 3) throw new Error('unreachable');
process.stdout.write(`${JSON.stringify(out)}\n`);
