/**
 * Decompression of context archives, chosen by content (magic bytes), never by file name:
 * gzip (multi-member too, through `node:zlib`), zstd (every frame: Deno's decoder stops after the
 * first one, so {@link zstdDecompress} walks the frames and gives each its own decoder; skippable
 * frames are skipped; trailing garbage fails), or none. bzip2 and xz are recognised and refused
 * with a clear error.
 * @module
 */
import zlib from "node:zlib";
import { Duplex } from "node:stream";
import { KanikoError } from "../errors.ts";
import { ByteReader } from "../tar/byte_reader.ts";

/** What the first bytes of an archive say. */
export type Compression = "gzip" | "zstd" | "bzip2" | "xz" | "none";

const ZSTD_MAGIC = 0xfd2fb528;

/** The compression of a stream that starts with `head` (at least 6 bytes when available). */
export function detectCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.length >= 4) {
    const magic = readU32(head, 0);
    if (magic === ZSTD_MAGIC || isSkippable(magic)) return "zstd";
  }
  if (head.length >= 3 && head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return "bzip2";
  if (
    head.length >= 6 && head[0] === 0xfd && head[1] === 0x37 && head[2] === 0x7a &&
    head[3] === 0x58 && head[4] === 0x5a && head[5] === 0x00
  ) return "xz";
  return "none";
}

/**
 * Peeks at the first bytes of `stream`, and returns the decompressed stream with the
 * compression found. `what` names the archive in errors.
 */
export async function decompressByContent(
  stream: ReadableStream<Uint8Array>,
  what: string,
): Promise<{ stream: ReadableStream<Uint8Array>; compression: Compression }> {
  const { head, rest } = await peek(stream, 6);
  const compression = detectCompression(head);
  switch (compression) {
    case "gzip":
      return { stream: gunzip(rest, what), compression };
    case "zstd":
      return { stream: zstdDecompress(rest, what), compression };
    case "bzip2":
    case "xz":
      await rest.cancel().catch(() => {});
      throw new KanikoError(`${what} is ${compression}-compressed, which is not supported`, {
        hint: "recompress it with gzip or zstd, or pass a plain tar",
      });
    default:
      return { stream: rest, compression };
  }
}

/** gzip through `node:zlib` (which, unlike `DecompressionStream`, reads multi-member files). */
function gunzip(stream: ReadableStream<Uint8Array>, what: string): ReadableStream<Uint8Array> {
  return wrapErrors(stream.pipeThrough(toWeb(zlib.createGunzip())), what, "gzip");
}

/**
 * Decompresses a whole zstd stream: each frame is fed to a fresh `node:zlib` decoder, skippable
 * frames are skipped, and anything that is not a frame fails loudly.
 */
export function zstdDecompress(
  stream: ReadableStream<Uint8Array>,
  what = "zstd stream",
): ReadableStream<Uint8Array> {
  const frames = zstdFrames(stream, what);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await frames.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      } catch (e) {
        controller.error(e);
      }
    },
    async cancel() {
      await frames.return(undefined);
    },
  }, { highWaterMark: 0 });
}

async function* zstdFrames(
  stream: ReadableStream<Uint8Array>,
  what: string,
): AsyncGenerator<Uint8Array, void, undefined> {
  const src = new ByteReader(stream);
  let done = false;
  try {
    for (let frame = 0;; frame++) {
      const magicBytes = await src.readExact(4);
      if (magicBytes.length === 0) {
        if (frame === 0) throw zstdError(what, "is empty");
        break;
      }
      if (magicBytes.length < 4) throw zstdError(what, `ends inside frame ${frame + 1}`);
      const magic = readU32(magicBytes, 0);
      if (isSkippable(magic)) {
        const sizeBytes = await src.readExact(4);
        if (sizeBytes.length < 4) throw zstdError(what, "ends inside a skippable frame");
        const size = readU32(sizeBytes, 0);
        if ((await src.skip(size)) < size) throw zstdError(what, "ends inside a skippable frame");
        continue;
      }
      if (magic !== ZSTD_MAGIC) {
        throw zstdError(
          what,
          `has ${src.offset - 4} bytes of zstd frames followed by data that is not a zstd frame`,
        );
      }
      yield* decodeFrame(src, magicBytes, what, frame + 1);
    }
    done = true;
  } finally {
    if (!done) await src.cancel();
    src.release();
  }
}

/** Reads one frame from `src` (its magic already read), yielding its decompressed bytes. */
async function* decodeFrame(
  src: ByteReader,
  magic: Uint8Array,
  what: string,
  index: number,
): AsyncGenerator<Uint8Array, void, undefined> {
  const decoder = toWeb(zlib.createZstdDecompress());
  const writer = decoder.writable.getWriter();
  let feedError: unknown;
  const feed = (async () => {
    const need = async (n: number, where: string) => {
      const bytes = await src.readExact(n);
      if (bytes.length < n) throw zstdError(what, `ends inside frame ${index} (${where})`);
      await writer.write(bytes);
      return bytes;
    };
    await writer.write(magic);
    const [descriptor] = await need(1, "frame header");
    if (descriptor & 0x08) throw zstdError(what, `frame ${index} has a reserved header bit set`);
    const singleSegment = (descriptor >> 5) & 1;
    const fcsSize = [singleSegment ? 1 : 0, 2, 4, 8][descriptor >> 6];
    const dictSize = [0, 1, 2, 4][descriptor & 3];
    const headerRest = (singleSegment ? 0 : 1) + dictSize + fcsSize;
    if (headerRest > 0) await need(headerRest, "frame header");
    for (let last = false; !last;) {
      const header = await need(3, "block header");
      const value = header[0] | (header[1] << 8) | (header[2] << 16);
      last = (value & 1) === 1;
      const type = (value >> 1) & 3;
      const size = value >>> 3;
      if (type === 3) throw zstdError(what, `frame ${index} has a reserved block type`);
      let left = type === 1 ? 1 : size;
      while (left > 0) {
        const chunk = await src.read(left);
        if (!chunk) throw zstdError(what, `ends inside frame ${index} (block)`);
        left -= chunk.length;
        await writer.write(chunk);
      }
    }
    if (descriptor & 0x04) await need(4, "checksum");
    await writer.close();
  })().catch(async (e) => {
    feedError = e;
    await writer.abort(e).catch(() => {});
  });
  try {
    for await (const chunk of decoder.readable) yield chunk;
  } catch (e) {
    await feed;
    throw feedError ?? zstdError(what, `frame ${index} is corrupt: ${(e as Error).message}`, e);
  }
  await feed;
  if (feedError) throw feedError;
}

function zstdError(what: string, detail: string, cause?: unknown): KanikoError {
  if (cause instanceof KanikoError) return cause;
  return new KanikoError(`${what}: zstd data ${detail}`, {
    hint: "the file or download is incomplete or damaged",
    cause,
  });
}

/** Rewords decoder failures of a decompressed stream as one clear line. */
function wrapErrors(
  stream: ReadableStream<Uint8Array>,
  what: string,
  kind: string,
): ReadableStream<Uint8Array> {
  const reader = stream.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const r = await reader.read();
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      } catch (e) {
        controller.error(
          e instanceof KanikoError ? e : new KanikoError(
            `${what}: ${kind} data is corrupt or truncated: ${(e as Error).message ?? e}`,
            { hint: "the file or download is incomplete or damaged", cause: e },
          ),
        );
      }
    },
    async cancel(reason) {
      await reader.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
}

function toWeb(duplex: Duplex): ReadableWritablePair<Uint8Array, Uint8Array> {
  return Duplex.toWeb(duplex) as unknown as ReadableWritablePair<Uint8Array, Uint8Array>;
}

/** Reads at least `n` bytes (fewer at end of stream) and returns them with the full stream. */
export async function peek(
  stream: ReadableStream<Uint8Array>,
  n: number,
): Promise<{ head: Uint8Array; rest: ReadableStream<Uint8Array> }> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let ended = false;
  while (size < n) {
    const r = await reader.read();
    if (r.done) {
      ended = true;
      break;
    }
    chunks.push(r.value);
    size += r.value.length;
  }
  const head = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    head.set(c, off);
    off += c.length;
  }
  let replayed = false;
  const rest = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!replayed) {
        replayed = true;
        if (head.length > 0) {
          controller.enqueue(head);
          return;
        }
      }
      if (ended) {
        controller.close();
        return;
      }
      try {
        const r = await reader.read();
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      } catch (e) {
        controller.error(e);
      }
    },
    async cancel(reason) {
      await reader.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
  return { head: head.slice(0, Math.min(head.length, Math.max(n, 0))), rest };
}

function readU32(bytes: Uint8Array, at: number): number {
  return (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
}

function isSkippable(magic: number): boolean {
  return (magic & 0xfffffff0) >>> 0 === 0x184d2a50;
}
