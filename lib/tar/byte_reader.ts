/**
 * A pull reader over a `ReadableStream<Uint8Array>` that hands out exact byte counts (for
 * headers) or whatever is buffered up to a limit (for bodies), tracking the offset.
 * @module
 */

/** Reads bytes from a stream in exact or bounded amounts. */
export class ByteReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buf: Uint8Array = new Uint8Array(0);
  #offset = 0;
  #done = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /** Bytes consumed so far. */
  get offset(): number {
    return this.#offset;
  }

  async #fill(): Promise<boolean> {
    while (this.#buf.length === 0) {
      if (this.#done) return false;
      const r = await this.#reader.read();
      if (r.done) {
        this.#done = true;
        return false;
      }
      if (!(r.value instanceof Uint8Array)) {
        throw new TypeError("tar input stream must produce Uint8Array chunks");
      }
      this.#buf = r.value;
    }
    return true;
  }

  /**
   * Up to `max` bytes (at least one), or null at end of stream. A chunk shorter than the
   * buffered data is a copy, so consumers may keep or transfer it.
   */
  async read(max: number): Promise<Uint8Array | null> {
    if (max <= 0 || !(await this.#fill())) return null;
    let out: Uint8Array;
    if (this.#buf.length <= max) {
      out = this.#buf;
      this.#buf = new Uint8Array(0);
    } else {
      out = this.#buf.slice(0, max);
      this.#buf = this.#buf.subarray(max);
    }
    this.#offset += out.length;
    return out;
  }

  /** Exactly `n` bytes, or fewer only when the stream ended first. */
  async readExact(n: number): Promise<Uint8Array> {
    if (this.#buf.length >= n || !(await this.#fill()) || this.#buf.length >= n) {
      const out = this.#buf.slice(0, n);
      this.#buf = this.#buf.subarray(out.length);
      this.#offset += out.length;
      return out;
    }
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const chunk = await this.read(n - got);
      if (!chunk) return out.subarray(0, got);
      out.set(chunk, got);
      got += chunk.length;
    }
    return out;
  }

  /**
   * Like {@link readExact}, but without a copy when the bytes are in the buffered chunk: the view
   * is valid until the next read (for header blocks and records decoded on the spot).
   */
  async readView(n: number): Promise<Uint8Array> {
    if (this.#buf.length >= n || !(await this.#fill()) || this.#buf.length >= n) {
      const out = this.#buf.subarray(0, n);
      this.#buf = this.#buf.subarray(out.length);
      this.#offset += out.length;
      return out;
    }
    return await this.readExact(n);
  }

  /** Discards `n` bytes; returns how many were discarded (fewer at end of stream). */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      if (!(await this.#fill())) break;
      const take = Math.min(left, this.#buf.length);
      this.#buf = this.#buf.subarray(take);
      this.#offset += take;
      left -= take;
    }
    return n - left;
  }

  /** Reads and discards everything up to the end of the stream. */
  async drain(): Promise<void> {
    while (await this.#fill()) {
      this.#offset += this.#buf.length;
      this.#buf = new Uint8Array(0);
    }
  }

  /** Cancels the underlying stream (when stopping early). */
  async cancel(reason?: unknown): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    await this.#reader.cancel(reason).catch(() => {});
  }

  /** Releases the stream's lock. */
  release(): void {
    try {
      this.#reader.releaseLock();
    } catch {
      // already released
    }
  }
}
