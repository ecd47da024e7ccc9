/**
 * The bytes of the latest version of one resource, copied into a buffer
 * that its versions share. A response's buffer kept until the next version
 * outlives a few young collections and is then freed only by a full one:
 * with ~170 EDS responses a second (25 MB/s) that was V8's "external memory
 * pressure", a full collection every 1.2-2.3 s, each delaying every update
 * for ~200 ms. Copied into a reused buffer, each response's buffer dies young.
 *
 * @example
 * const kept = new KeptBytes(); kept.keep(resourceBytes); kept.bytes.equals(next);
 */
export class KeptBytes {
  private buffer = Buffer.alloc(0);
  private length = 0;

  /** The bytes last kept (a view: valid until the next `keep`). */
  get bytes(): Buffer {
    return this.buffer.subarray(0, this.length);
  }

  /** Copies `bytes` in, growing the buffer with headroom, or shrinking it when it is far too large. */
  keep(bytes: Buffer): void {
    if (bytes.length > this.buffer.length || bytes.length < this.buffer.length / 4)
      this.buffer = Buffer.allocUnsafeSlow(Math.ceil(bytes.length * 1.25));
    bytes.copy(this.buffer, 0, 0, bytes.length);
    this.length = bytes.length;
  }
}
