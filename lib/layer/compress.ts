/**
 * Deterministic streaming compression and decompression through Deno's native `node:zlib`.
 *
 * Deno's `node:zlib` output depends on more than the input bytes (measured on Deno 2.9.6):
 * - on how the input is cut into writes (512-byte writes give other gzip bytes than 64 KiB ones;
 *   4 MiB writes give other zstd bytes than 1 MiB ones);
 * - on whether writes queue up (queued writes are merged, so a burst of writes compresses
 *   differently from the same writes one at a time);
 * - for gzip at level 6, on `chunkSize` (the size of the output buffers).
 *
 * So a {@link ZlibDriver} writes one chunk at a time and waits for its callback before the next,
 * the output buffer size is fixed ({@link ZLIB_CHUNK_SIZE}), and `writeLayer` feeds fixed-size
 * input chunks ({@link INPUT_CHUNK_SIZE}). With those three fixed, the same tar bytes give the
 * same blob on every run. The gzip header `node:zlib` writes has no name, mtime 0 and OS byte 3
 * (`1f 8b 08 00 00 00 00 00 00 03`). Compressed bytes may still change between Deno versions.
 * @module
 */
import zlib from "node:zlib";
import type { Transform } from "node:stream";
import { KanikoError } from "../errors.ts";

/** Compression of a layer blob. */
export type Compression = "gzip" | "zstd" | "none";

/**
 * Default gzip level: 1, as Kaniko (go-containerregistry's `tarball.LayerFromOpener` defaults to
 * `gzip.BestSpeed`; Kaniko passes `--compression-level` only when it is above 0). See
 * `bench/layer_bench.ts` for the measured speed and size of the levels.
 */
export const DEFAULT_GZIP_LEVEL = 1;
/** Default zstd level: 3, zstd's own default. */
export const DEFAULT_ZSTD_LEVEL = 3;
/** Size of the input chunks fed to a compressor (fixed: the output depends on it). */
export const INPUT_CHUNK_SIZE = 1 << 20;
/** Size of `node:zlib` output buffers (fixed: gzip output depends on it). */
export const ZLIB_CHUNK_SIZE = 64 << 10;

const LEVELS: Record<Exclude<Compression, "none">, [number, number]> = {
  gzip: [0, 9],
  zstd: [1, 22],
};

/**
 * The level to use for `compression`: `level` when given (checked against the range of the
 * algorithm: gzip 0–9, zstd 1–22), else the default. `none` has no level; one given is ignored.
 */
export function compressionLevel(compression: Compression, level?: number): number {
  if (compression === "none") return 0;
  if (level === undefined) return compression === "gzip" ? DEFAULT_GZIP_LEVEL : DEFAULT_ZSTD_LEVEL;
  const [min, max] = LEVELS[compression];
  if (!Number.isInteger(level) || level < min || level > max) {
    throw new KanikoError(`invalid ${compression} compression level ${level}`, {
      hint: `use a whole number from ${min} to ${max}`,
    });
  }
  return level;
}

/** A fresh `node:zlib` compressor; `level` must come from {@link compressionLevel}. */
export function createCompressor(compression: "gzip" | "zstd", level: number): ZlibDriver {
  if (compression === "gzip") {
    return new ZlibDriver(zlib.createGzip({ level, chunkSize: ZLIB_CHUNK_SIZE }));
  }
  return new ZlibDriver(zlib.createZstdCompress({
    chunkSize: ZLIB_CHUNK_SIZE,
    // A content checksum (XXH64) in every frame, as the zstd CLI and Go's zstd encoder write.
    params: {
      [zlib.constants.ZSTD_c_compressionLevel]: level,
      [zlib.constants.ZSTD_c_checksumFlag]: 1,
    },
  }));
}

/**
 * Drives a `node:zlib` transform one write at a time (see the module notes) and hands back the
 * output produced so far after each write. Memory stays bounded by one input chunk and its output.
 */
export class ZlibDriver {
  #z: Transform;
  #out: Uint8Array[] = [];
  #ended: Promise<void>;
  /** Rejects with the stream's first error (a write in flight may never call back after one). */
  #failed: Promise<never>;
  #error?: Error;

  constructor(z: Transform) {
    this.#z = z;
    this.#catchNativeErrors();
    z.on("data", (chunk: Uint8Array) => this.#out.push(chunk));
    let fail!: (e: Error) => void;
    this.#failed = new Promise<never>((_, reject) => fail = reject);
    this.#failed.catch(() => {});
    this.#ended = new Promise<void>((resolve) => z.once("end", resolve));
    z.on("error", (e: Error) => {
      this.#error ??= e;
      fail(this.#error);
    });
  }

  /** Feeds `chunk` and returns the output available once it has been consumed. */
  async write(chunk: Uint8Array): Promise<Uint8Array[]> {
    if (this.#error) throw this.#error;
    const written = new Promise<void>((resolve, reject) => {
      this.#z.write(chunk, (err?: Error | null) => err ? reject(err) : resolve());
    });
    written.catch(() => {}); // it may settle after the race is lost
    await Promise.race([written, this.#failed]);
    if (this.#error) throw this.#error;
    return this.#take();
  }

  /** Ends the input and returns the rest of the output. */
  async end(): Promise<Uint8Array[]> {
    if (this.#error) throw this.#error;
    this.#z.end();
    await Promise.race([this.#ended, this.#failed]);
    if (this.#error) throw this.#error;
    return this.#take();
  }

  /** Releases the native stream (after a failure). */
  destroy(): void {
    this.#z.destroy();
  }

  /**
   * Works around a Deno 2.9 bug: the zstd decoder's native write throws (e.g. "Restored data
   * doesn't match checksum") from a callback instead of reporting the error to the stream, which
   * makes it an uncaught error that ends the process. The throw is caught here, kept as this
   * driver's error, and passed to the handle's `onerror` (which destroys the stream, as for any
   * zlib error).
   */
  #catchNativeErrors(): void {
    const handle = (this.#z as unknown as { _handle?: Record<symbol, unknown> })._handle;
    if (!handle) return;
    const key = Object.getOwnPropertySymbols(handle).find((s) => s.description === "kNativeWrite");
    const native = key && handle[key];
    if (!key || typeof native !== "function") return;
    const setError = (e: Error) => {
      this.#error ??= e;
    };
    handle[key] = function (this: { onerror?: (message: string, errno: number) => void }) {
      try {
        return native.apply(this, arguments);
      } catch (e) {
        const error = e instanceof Error ? e : new Error(String(e));
        setError(error);
        try {
          this.onerror?.(error.message, -1);
        } catch {
          // the stream is being torn down anyway
        }
      }
    };
  }

  #take(): Uint8Array[] {
    const out = this.#out;
    this.#out = [];
    return out;
  }
}

/**
 * A web `TransformStream` over a `node:zlib` transform, driven one write at a time: unlike
 * `Duplex.toWeb`, output bytes do not depend on timing, and backpressure is exact.
 */
export function zlibTransform(z: Transform): TransformStream<Uint8Array, Uint8Array> {
  const driver = new ZlibDriver(z);
  return new TransformStream<Uint8Array, Uint8Array>({
    async transform(chunk, controller) {
      for (const out of await driver.write(chunk)) controller.enqueue(out);
    },
    async flush(controller) {
      for (const out of await driver.end()) controller.enqueue(out);
    },
    cancel() {
      driver.destroy();
    },
  });
}
