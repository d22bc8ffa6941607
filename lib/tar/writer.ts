/**
 * Streaming tar writer: POSIX ustar headers, plus a PAX `x` header whenever a value does not fit
 * (long or non-ASCII names and link targets, ids above 2097151, sizes of 8 GiB and more,
 * sub-second or negative mtimes, xattrs as binary-safe `SCHILY.xattr.*`, extra records). Bodies
 * are streamed with an exact size check. Output is deterministic for a given input.
 * @module
 */
import { KanikoError } from "../errors.ts";
import {
  BLOCK_SIZE,
  encodeUstar,
  padding,
  type TarEntryType,
  type TarHeader,
  TYPEFLAG,
  utf8,
} from "./header.ts";
import { encodePaxRecords } from "./pax.ts";
import { fitsString, paxRecordsFor } from "./pax_fields.ts";

/** An entry to write: a header and, for files, the body. */
export interface TarWriteEntry {
  /** Metadata; `size` defaults to the body length when the body is a Uint8Array. */
  header: TarHeader;
  /** The body; a stream must produce exactly `header.size` bytes. */
  body?: ReadableStream<Uint8Array> | Uint8Array;
}

const NS = 1_000_000_000n;
const DEFAULT_MODE: Record<TarEntryType, number> = {
  file: 0o644,
  dir: 0o755,
  symlink: 0o777,
  hardlink: 0o644,
  char: 0o644,
  block: 0o644,
  fifo: 0o644,
};

/**
 * Encodes one entry as chunks: PAX header (when needed), ustar header, body, padding. Errors
 * (a {@link KanikoError}) on an invalid header or a body whose length is not `header.size`.
 */
export async function* encodeEntry(
  header: TarHeader,
  body?: ReadableStream<Uint8Array> | Uint8Array,
): AsyncGenerator<Uint8Array, void, undefined> {
  const size = entrySize(header, body);
  yield* headerBlocks(header, size);
  if (body instanceof Uint8Array) {
    if (size > 0) yield body;
  } else if (body) {
    yield* streamBody(body, size, header.name);
  }
  const pad = padding(size);
  if (pad > 0) yield new Uint8Array(pad);
}

/** The two zero blocks that end an archive. */
export function endOfArchive(): Uint8Array {
  return new Uint8Array(2 * BLOCK_SIZE);
}

/**
 * A tar archive as a stream, pulled lazily from `entries` (so bodies are read only as the
 * consumer reads). Cancelling the stream cancels the body being read.
 */
export function createTarStream(
  entries: AsyncIterable<TarWriteEntry> | Iterable<TarWriteEntry>,
): ReadableStream<Uint8Array> {
  async function* chunks(): AsyncGenerator<Uint8Array, void, undefined> {
    for await (const { header, body } of entries) yield* encodeEntry(header, body);
    yield endOfArchive();
  }
  return ReadableStream.from(chunks());
}

/** Push-style writer into a `WritableStream`, with backpressure. */
export class TarWriter {
  #w: WritableStreamDefaultWriter<Uint8Array>;
  #busy = false;
  #failed?: unknown;
  #closed = false;

  /** Writes into `writable` (locked until {@link close} or {@link abort}). */
  constructor(writable: WritableStream<Uint8Array>) {
    this.#w = writable.getWriter();
  }

  /** Appends one entry; call sequentially (await each call). */
  async add(header: TarHeader, body?: ReadableStream<Uint8Array> | Uint8Array): Promise<void> {
    this.#check();
    this.#busy = true;
    try {
      for await (const chunk of encodeEntry(header, body)) await this.#write(chunk);
    } catch (e) {
      this.#failed = e;
      throw e;
    } finally {
      this.#busy = false;
    }
  }

  /** Writes the end-of-archive blocks and closes the writable stream. */
  async close(): Promise<void> {
    this.#check();
    this.#closed = true;
    await this.#write(endOfArchive());
    await this.#w.close();
  }

  /** Aborts the writable stream (after a failure). */
  async abort(reason?: unknown): Promise<void> {
    this.#closed = true;
    await this.#w.abort(reason).catch(() => {});
  }

  async #write(chunk: Uint8Array): Promise<void> {
    await this.#w.ready;
    await this.#w.write(chunk);
  }

  #check(): void {
    if (this.#closed) throw new KanikoError("tar writer: already closed");
    if (this.#busy) throw new KanikoError("tar writer: add() called before the previous finished");
    if (this.#failed !== undefined) {
      throw new KanikoError("tar writer: an earlier entry failed; the archive is incomplete", {
        cause: this.#failed,
      });
    }
  }
}

function entrySize(h: TarHeader, body: ReadableStream<Uint8Array> | Uint8Array | undefined) {
  const size = h.size ?? (body instanceof Uint8Array ? body.length : 0);
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new KanikoError(`tar entry ${h.name}: invalid size ${size}`);
  }
  if (h.type !== "file" && (size !== 0 || body !== undefined)) {
    throw new KanikoError(`tar entry ${h.name}: a ${h.type} entry cannot have a body`);
  }
  if (body instanceof Uint8Array && body.length !== size) {
    throw new KanikoError(`tar entry ${h.name}: body is ${body.length} bytes, header says ${size}`);
  }
  return size;
}

function validate(h: TarHeader): void {
  if (!h.name || h.name.includes("\0")) {
    throw new KanikoError(`tar entry "${h.name}": invalid name (empty or containing NUL)`);
  }
  if (!(h.type in TYPEFLAG)) throw new KanikoError(`tar entry ${h.name}: unknown type ${h.type}`);
  if ((h.type === "symlink" || h.type === "hardlink") && !h.linkname) {
    throw new KanikoError(`tar entry ${h.name}: a ${h.type} needs a linkname`);
  }
  for (const key of ["uid", "gid", "devmajor", "devminor"] as const) {
    const v = h[key] ?? 0;
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new KanikoError(`tar entry ${h.name}: invalid ${key} ${v}`);
    }
  }
  if (h.mtime !== undefined && typeof h.mtime !== "bigint") {
    throw new KanikoError(`tar entry ${h.name}: mtime must be a bigint of nanoseconds`);
  }
}

function headerBlocks(h: TarHeader, size: number): Uint8Array[] {
  validate(h);
  const name = utf8(h.name);
  const split = splitUstarName(h.name);
  const linkname = h.linkname ?? "";
  const fit = { name: split !== undefined, linkname: fitsString(linkname, 100) };
  const records = paxRecordsFor({ ...h, size }, fit);
  const blocks: Uint8Array[] = [];
  const mtime = h.mtime ?? 0n;
  const sec = mtime >= 0n ? mtime / NS : -((-mtime + NS - 1n) / NS);
  if (records.length > 0) {
    const data = encodePaxRecords(records);
    blocks.push(
      encodeUstar({
        typeflag: "x",
        name: utf8(paxHeaderName(h.name)),
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: data.length,
        mtime: sec,
      }),
      data,
      new Uint8Array(padding(data.length)),
    );
  }
  blocks.push(encodeUstar({
    typeflag: TYPEFLAG[h.type],
    name: split?.name ?? name,
    prefix: split?.prefix,
    linkname: utf8(linkname),
    mode: h.mode ?? DEFAULT_MODE[h.type],
    uid: h.uid ?? 0,
    gid: h.gid ?? 0,
    size,
    mtime: sec,
    uname: fitsString(h.uname, 31) ? h.uname : "",
    gname: fitsString(h.gname, 31) ? h.gname : "",
    devmajor: h.devmajor,
    devminor: h.devminor,
  }));
  return blocks;
}

/**
 * Splits a printable-ASCII name into ustar `prefix` (≤155 bytes) and `name` (≤100 bytes) at a
 * slash; undefined when the name needs a PAX `path` record.
 */
export function splitUstarName(
  name: string,
): { name: Uint8Array; prefix?: Uint8Array } | undefined {
  if (!fitsString(name, 256)) return undefined;
  if (name.length <= 100) return { name: utf8(name) };
  let limit = Math.min(name.length, 156);
  if (limit === name.length && name.endsWith("/")) limit--;
  const i = name.lastIndexOf("/", limit - 1);
  if (i <= 0 || name.length - i - 1 > 100 || name.length - i - 1 === 0) return undefined;
  return { name: utf8(name.slice(i + 1)), prefix: utf8(name.slice(0, i)) };
}

function paxHeaderName(name: string): string {
  const trimmed = name.replace(/\/+$/, "");
  const slash = trimmed.lastIndexOf("/");
  const dir = slash >= 0 ? trimmed.slice(0, slash + 1) : "";
  const base = trimmed.slice(slash + 1);
  return `${dir}PaxHeaders.0/${base}`.replace(/[^\x20-\x7e]/g, "_").slice(0, 100);
}

async function* streamBody(
  body: ReadableStream<Uint8Array>,
  size: number,
  name: string,
): AsyncGenerator<Uint8Array, void, undefined> {
  const reader = body.getReader();
  let got = 0;
  let ok = false;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      got += value.length;
      if (got > size) {
        throw new KanikoError(`tar entry ${name}: body has more than the ${size} bytes declared`);
      }
      if (value.length > 0) yield value;
    }
    if (got !== size) {
      throw new KanikoError(`tar entry ${name}: body has ${got} bytes, header says ${size}`);
    }
    ok = true;
  } finally {
    if (!ok) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
