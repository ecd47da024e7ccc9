/**
 * 32-bit FNV-1a over the UTF-16 code units of `text`, finished with
 * murmur3's fmix32 so that keys differing only in their last character
 * ("user-1", "user-2") still land far apart. Reads `charCodeAt` in a loop:
 * no Buffer, no allocation, safe to call on every pick.
 *
 * @example
 * const slot = hashString('user-42') % tableSize;
 */
export function hashString(text: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // fmix32: FNV-1a alone leaves the low bits weak, and the table index is taken modulo a prime.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
