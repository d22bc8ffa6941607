/**
 * Decompression by content (magic bytes), never by name or media type, streamed:
 * - gzip through `node:zlib` (multi-member files too, which `DecompressionStream` fails on);
 * - zstd through {@link zstdDecompress} (every frame; skippable frames skipped);
 * - bzip2 and xz through the `bzip2` and `xz` programs (`-dc`, stdin to stdout), for ADD of
 *   local archives; a clear error when the program is not installed;
 * - anything else passes through as it is.
 * @module
 */
import zlib from "node:zlib";
import { KanikoError } from "../errors.ts";
import { ZLIB_CHUNK_SIZE, zlibTransform } from "./compress.ts";
import { isSkippableMagic, ZSTD_MAGIC, zstdDecompress } from "./zstd_frames.ts";

/** What the first bytes of a stream say it is compressed with. */
export type DetectedCompression = "gzip" | "zstd" | "bzip2" | "xz" | "none";

/** Options of {@link decompressByContent}. */
export interface DecompressOptions {
  /**
   * Run `bzip2` / `xz` for such streams (default true). When false they are refused with
   * `<what> is bzip2-compressed, which is not supported`.
   */
  external?: boolean;
  /** The programs to run (default: `bzip2` and `xz`, looked up in `PATH`). */
  programs?: { bzip2?: string; xz?: string };
}

/** The compression of a stream that starts with `head` (6 bytes are enough). */
export function detectCompression(head: Uint8Array): DetectedCompression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.length >= 4) {
    const magic = (head[0] | (head[1] << 8) | (head[2] << 16) | (head[3] << 24)) >>> 0;
    if (magic === ZSTD_MAGIC || isSkippableMagic(magic)) return "zstd";
  }
  if (head.length >= 3 && head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return "bzip2";
  if (
    head.length >= 6 && head[0] === 0xfd && head[1] === 0x37 && head[2] === 0x7a &&
    head[3] === 0x58 && head[4] === 0x5a && head[5] === 0x00
  ) return "xz";
  return "none";
}

/**
 * The decompressed bytes of `stream`, whatever it is compressed with (see the module notes).
 * Detection waits for the first read; failures (corrupt or truncated data, a missing `bzip2` or
 * `xz`) error the returned stream with a {@link KanikoError} naming `what`.
 */
export function decompress(
  stream: ReadableStream<Uint8Array>,
  what = "layer",
): ReadableStream<Uint8Array> {
  let inner: ReadableStreamDefaultReader<Uint8Array> | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        inner ??= (await decompressByContent(stream, what)).stream.getReader();
        const r = await inner.read();
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      } catch (e) {
        controller.error(e);
      }
    },
    async cancel(reason) {
      if (inner) await inner.cancel(reason).catch(() => {});
      else await stream.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
}

/**
 * Peeks at the first bytes of `stream` and returns the decompressed stream with the compression
 * found. `what` names the stream in errors.
 */
export async function decompressByContent(
  stream: ReadableStream<Uint8Array>,
  what: string,
  options: DecompressOptions = {},
): Promise<{ stream: ReadableStream<Uint8Array>; compression: DetectedCompression }> {
  const { head, rest } = await peek(stream, 6);
  const compression = detectCompression(head);
  switch (compression) {
    case "gzip":
      return { stream: gunzip(rest, what), compression };
    case "zstd":
      return { stream: zstdDecompress(rest, what), compression };
    case "bzip2":
    case "xz":
      if (options.external === false) {
        await rest.cancel().catch(() => {});
        throw new KanikoError(`${what} is ${compression}-compressed, which is not supported`, {
          hint: "recompress it with gzip or zstd, or pass a plain tar",
        });
      }
      return {
        stream: await external(rest, compression, options.programs?.[compression], what),
        compression,
      };
    default:
      return { stream: rest, compression };
  }
}

/** gzip (every member) through `node:zlib`; decoder failures become one clear line. */
export function gunzip(
  stream: ReadableStream<Uint8Array>,
  what = "gzip stream",
): ReadableStream<Uint8Array> {
  // Errors of the source itself (a failed download) pass through as they are.
  let sourceFailed = false;
  const sourceReader = stream.getReader();
  const input = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const r = await sourceReader.read();
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      } catch (e) {
        sourceFailed = true;
        controller.error(e);
      }
    },
    async cancel(reason) {
      await sourceReader.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
  const out = input.pipeThrough(zlibTransform(zlib.createGunzip({ chunkSize: ZLIB_CHUNK_SIZE })));
  const reader = out.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const r = await reader.read();
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      } catch (e) {
        controller.error(
          sourceFailed || e instanceof KanikoError ? e : new KanikoError(
            `${what}: gzip data is corrupt or truncated: ${(e as Error).message ?? e}`,
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

const PACKAGES: Record<"bzip2" | "xz", string> = { bzip2: "bzip2", xz: "xz-utils" };

/**
 * Decompresses through `bzip2 -dc` or `xz -dc`, streaming `stream` into its stdin and its stdout
 * out. The program's exit status and first stderr line are checked at the end.
 */
async function external(
  stream: ReadableStream<Uint8Array>,
  tool: "bzip2" | "xz",
  program: string | undefined,
  what: string,
): Promise<ReadableStream<Uint8Array>> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program ?? tool, {
      args: ["-dc"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    await stream.cancel().catch(() => {});
    if (e instanceof Deno.errors.NotFound) {
      throw new KanikoError(
        `${what} is ${tool}-compressed, and the ${tool} program is not installed`,
        {
          hint: `install it (Debian: apt-get install ${PACKAGES[tool]}) or recompress with gzip`,
          cause: e,
        },
      );
    }
    throw new KanikoError(`${what}: cannot run ${tool}: ${(e as Error).message ?? e}`, {
      cause: e,
    });
  }
  const src = stream.getReader();
  const stdin = child.stdin.getWriter();
  let inputError: unknown;
  let stopped = false;
  const feeding = (async () => {
    while (!stopped) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await src.read();
      } catch (e) {
        inputError = e;
        await stdin.abort(e).catch(() => {});
        return;
      }
      if (r.done) break;
      try {
        await stdin.write(r.value);
      } catch {
        // The program closed its input (it failed, or was killed): its exit status tells.
        await src.cancel().catch(() => {});
        return;
      }
    }
    await stdin.close().catch(() => {});
  })();
  const stderr = new Response(child.stderr).text().catch(() => "");
  const out = child.stdout.getReader();
  let settled: Promise<[Deno.CommandStatus, string, void]> | undefined;
  const settle = () => settled ??= Promise.all([child.status, stderr, feeding]);
  const stop = async () => {
    if (!stopped) {
      stopped = true;
      try {
        child.kill("SIGKILL");
      } catch {
        // already exited
      }
      await src.cancel().catch(() => {});
      await out.cancel().catch(() => {});
    }
    await settle().catch(() => {});
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const r = await out.read();
        if (!r.done) {
          controller.enqueue(r.value);
          return;
        }
        const [status, message] = await settle();
        if (inputError !== undefined) throw inputError;
        if (!status.success) {
          const line = message.trim().split("\n")[0] || `exit code ${status.code}`;
          throw new KanikoError(`${what}: ${tool} data is corrupt or truncated: ${line}`, {
            hint: "the file or download is incomplete or damaged",
          });
        }
        controller.close();
      } catch (e) {
        await stop();
        controller.error(e);
      }
    },
    async cancel() {
      await stop();
    },
  }, { highWaterMark: 0 });
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
  let head: Uint8Array;
  if (chunks.length === 1) head = chunks[0];
  else {
    head = new Uint8Array(size);
    let off = 0;
    for (const c of chunks) {
      head.set(c, off);
      off += c.length;
    }
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
  return { head: head.slice(0, Math.min(head.length, n)), rest };
}
