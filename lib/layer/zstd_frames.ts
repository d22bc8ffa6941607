/**
 * zstd streams of any number of frames. Deno's zstd decoder (`node:zlib`) silently stops after
 * the first frame, and multi-frame files are common (pzstd, zstd:chunked, any chunked writer). A
 * {@link ZstdFrameSplitter} walks frame and block headers (RFC 8878 §3.1) as bytes arrive, so
 * that {@link zstdDecompress} gives each frame a fresh decoder; skippable frames are skipped, and
 * anything that is not a frame fails loudly.
 * @module
 */
import zlib from "node:zlib";
import { KanikoError } from "../errors.ts";
import { ZLIB_CHUNK_SIZE, ZlibDriver } from "./compress.ts";

/** Magic number of a zstd frame (little-endian `28 b5 2f fd`). */
export const ZSTD_MAGIC = 0xfd2fb528;
/** Largest block a frame may hold (RFC 8878 §3.1.1.2.3). */
const MAX_BLOCK_SIZE = 128 << 10;

/** True for the magic numbers of skippable frames (`0x184d2a50`–`0x184d2a5f`). */
export function isSkippableMagic(magic: number): boolean {
  return (magic & 0xfffffff0) >>> 0 === 0x184d2a50;
}

/** What {@link ZstdFrameSplitter.push} found: bytes of frame `frame`, or the end of that frame. */
export type FrameEvent =
  | { type: "data"; frame: number; bytes: Uint8Array }
  | { type: "end"; frame: number };

type State =
  | "magic"
  | "skipSize"
  | "skip"
  | "descriptor"
  | "header"
  | "blockHeader"
  | "block"
  | "checksum";

/**
 * Splits a zstd stream into frames as it arrives, without copying frame bytes (events hold
 * subarrays of the pushed chunks, except for magic numbers cut between chunks).
 */
export class ZstdFrameSplitter {
  #what: string;
  #state: State = "magic";
  /** Bytes still wanted by the current state. */
  #need = 4;
  /** Bytes of the small field being read (magic, sizes, headers). */
  #field: number[] = [];
  #frame = 0;
  #checksum = false;
  #lastBlock = false;
  #offset = 0;

  /** `what` names the stream in errors. */
  constructor(what: string) {
    this.#what = what;
  }

  /** Frames seen so far (skippable ones excluded). */
  get frames(): number {
    return this.#frame;
  }

  /** Consumes `chunk`; returns the frame bytes and frame ends it holds, in order. */
  push(chunk: Uint8Array): FrameEvent[] {
    const events: FrameEvent[] = [];
    let pos = 0;
    /** Start in `chunk` of frame bytes not yet emitted (-1: not inside a frame). */
    let start = this.#inFrame() ? 0 : -1;
    while (pos < chunk.length) {
      const state = this.#state;
      if (state === "skip" || state === "block" || state === "checksum") {
        const take = Math.min(this.#need, chunk.length - pos);
        pos += take;
        this.#need -= take;
        if (this.#need > 0) break;
        if (state === "skip") this.#expect("magic", 4);
        else if (state === "checksum" || this.#lastBlock && !this.#checksum) {
          this.#endFrame(events, chunk, start, pos);
          start = -1;
        } else if (this.#lastBlock) this.#expect("checksum", 4);
        else this.#expect("blockHeader", 3);
        continue;
      }
      this.#field.push(chunk[pos++]);
      if (--this.#need > 0) continue;
      const field = this.#field;
      this.#field = [];
      switch (state) {
        case "magic": {
          const magic = u32(field);
          if (isSkippableMagic(magic)) {
            this.#expect("skipSize", 4);
          } else if (magic === ZSTD_MAGIC) {
            this.#frame++;
            this.#lastBlock = false;
            events.push({ type: "data", frame: this.#frame, bytes: new Uint8Array(field) });
            start = pos;
            this.#expect("descriptor", 1);
          } else {
            throw this.#error(
              `has ${
                this.#offset + pos - 4
              } bytes of zstd frames followed by data that is not a zstd frame`,
            );
          }
          break;
        }
        case "skipSize":
          this.#expect("skip", u32(field));
          if (this.#need === 0) this.#expect("magic", 4);
          break;
        case "descriptor": {
          const d = field[0];
          if (d & 0x08) throw this.#error(`frame ${this.#frame} has a reserved header bit set`);
          const singleSegment = (d >> 5) & 1;
          const fcsSize = [singleSegment ? 1 : 0, 2, 4, 8][d >> 6];
          const dictSize = [0, 1, 2, 4][d & 3];
          this.#checksum = (d & 0x04) !== 0;
          const rest = (singleSegment ? 0 : 1) + dictSize + fcsSize;
          if (rest > 0) this.#expect("header", rest);
          else this.#expect("blockHeader", 3);
          break;
        }
        case "header":
          this.#expect("blockHeader", 3);
          break;
        case "blockHeader": {
          const value = field[0] | (field[1] << 8) | (field[2] << 16);
          this.#lastBlock = (value & 1) === 1;
          const type = (value >> 1) & 3;
          const size = value >>> 3;
          if (type === 3) throw this.#error(`frame ${this.#frame} has a reserved block type`);
          if (size > MAX_BLOCK_SIZE) {
            throw this.#error(`frame ${this.#frame} has a block larger than 128 KiB`);
          }
          const body = type === 1 ? 1 : size;
          if (body > 0) this.#expect("block", body);
          else if (!this.#lastBlock) this.#expect("blockHeader", 3);
          else if (this.#checksum) this.#expect("checksum", 4);
          else {
            this.#endFrame(events, chunk, start, pos);
            start = -1;
          }
          break;
        }
      }
    }
    if (start >= 0 && pos > start) {
      events.push({ type: "data", frame: this.#frame, bytes: chunk.subarray(start, pos) });
    }
    this.#offset += chunk.length;
    return events;
  }

  /** Checks that the stream ended between frames (and was not empty). */
  finish(): void {
    if (this.#offset === 0) throw this.#error("is empty");
    if (this.#state === "magic" && this.#field.length === 0) return;
    if (this.#state === "skip" || this.#state === "skipSize") {
      throw this.#error("ends inside a skippable frame");
    }
    if (this.#state === "magic") throw this.#error(`ends inside frame ${this.#frame + 1}`);
    throw this.#error(`ends inside frame ${this.#frame} (${this.#where()})`);
  }

  #endFrame(events: FrameEvent[], chunk: Uint8Array, start: number, end: number): void {
    if (end > start) {
      events.push({ type: "data", frame: this.#frame, bytes: chunk.subarray(start, end) });
    }
    events.push({ type: "end", frame: this.#frame });
    this.#expect("magic", 4);
  }

  #inFrame(): boolean {
    return this.#state !== "magic" && this.#state !== "skipSize" && this.#state !== "skip";
  }

  #where(): string {
    switch (this.#state) {
      case "descriptor":
      case "header":
        return "frame header";
      case "blockHeader":
        return "block header";
      case "checksum":
        return "checksum";
      default:
        return "block";
    }
  }

  #expect(state: State, need: number): void {
    this.#state = state;
    this.#need = need;
  }

  #error(detail: string): KanikoError {
    return zstdError(this.#what, detail);
  }
}

/**
 * Decompresses a whole zstd stream: every frame through a fresh `node:zlib` decoder, skippable
 * frames skipped; truncation, corruption and trailing data that is not a frame fail with a
 * {@link KanikoError} naming `what`.
 */
export function zstdDecompress(
  stream: ReadableStream<Uint8Array>,
  what = "zstd stream",
): ReadableStream<Uint8Array> {
  const reader = stream.getReader();
  return pullStream(zstdChunks(reader, what), (reason) => reader.cancel(reason));
}

async function* zstdChunks(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  what: string,
): AsyncGenerator<Uint8Array, void, undefined> {
  const splitter = new ZstdFrameSplitter(what);
  let decoder: ZlibDriver | undefined;
  let ok = false;
  const run = async (frame: number, op: (d: ZlibDriver) => Promise<Uint8Array[]>) => {
    decoder ??= new ZlibDriver(zlib.createZstdDecompress({ chunkSize: ZLIB_CHUNK_SIZE }));
    try {
      return await op(decoder);
    } catch (e) {
      throw zstdError(what, `frame ${frame} is corrupt: ${(e as Error).message ?? e}`, e);
    }
  };
  try {
    while (true) {
      const r = await reader.read();
      if (r.done) break;
      for (const event of splitter.push(r.value)) {
        if (event.type === "data") {
          yield* await run(event.frame, (d) => d.write(event.bytes));
        } else {
          yield* await run(event.frame, (d) => d.end());
          decoder = undefined;
        }
      }
    }
    splitter.finish();
    ok = true;
  } finally {
    if (!ok) {
      decoder?.destroy();
      await reader.cancel().catch(() => {});
    }
    reader.releaseLock();
  }
}

/**
 * A byte stream pulled from `chunks` one at a time. Cancelling it stops the generator, then calls
 * `onCancel` (for what a generator that never started could not release).
 */
export function pullStream(
  chunks: AsyncGenerator<Uint8Array, void, undefined>,
  onCancel?: (reason: unknown) => Promise<void>,
): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        // Skip empty chunks: a consumer must never see a read that moves nothing.
        while (true) {
          const next = await chunks.next();
          if (next.done) {
            controller.close();
            return;
          }
          if (next.value.length > 0) {
            controller.enqueue(next.value);
            return;
          }
        }
      } catch (e) {
        controller.error(e);
      }
    },
    async cancel(reason) {
      await chunks.return(undefined);
      await onCancel?.(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
}

/** A {@link KanikoError} about zstd data in `what`. */
export function zstdError(what: string, detail: string, cause?: unknown): KanikoError {
  if (cause instanceof KanikoError) return cause;
  return new KanikoError(`${what}: zstd data ${detail}`, {
    hint: "the file or download is incomplete or damaged",
    cause,
  });
}

function u32(b: number[]): number {
  return (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
}
