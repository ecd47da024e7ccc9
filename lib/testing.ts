// `switchyard/testing`: what users need to test their own apps without a
// registry server. A placeholder body until the public API is reshaped
// (issue 14), which replaces it with the final list of test helpers.
export { MemoryRegistry } from './registry/memory/memory.registry.js';
export { MemoryStore } from './registry/memory/memory.store.js';
