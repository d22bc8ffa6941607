/**
 * Streaming tar writer: POSIX ustar headers, plus a PAX `x` header whenever a value does not fit
 * (long or non-ASCII names and link targets, ids above 2097151, sizes of 8 GiB and more,
 * sub-second or negative mtimes, xattrs as binary-safe `SCHILY.xattr.*`, extra records). Bodies
 * are streamed with an exact size check. Output is deterministic for a given input.
 *
 * Speed: headers are written straight into the output array (ASCII text and octal digits as
 * bytes, no TextEncoder but for non-ASCII text), the checksum sums only the bytes written into
 * the zero-filled block, and an entry with its body in memory leaves as one chunk (headers, body,
 * padding); {@link createTarStream} also packs consecutive such entries of a synchronous
 * iterable into chunks of about {@link BATCH_BYTES}. Every chunk is a fresh array, never written
 * to once handed out.
 * @module
 */
import { KanikoError } from "../errors.ts";
import {
  BLOCK_SIZE,
  MAX_OCTAL_11,
  MAX_OCTAL_7,
  padding,
  type TarEntryType,
  type TarHeader,
  TYPEFLAG,
  USTAR_MAGIC,
  utf8,
  writeNumber,
  writeOctal,
} from "./header.ts";
import { layoutPaxRecords, type PaxLayout, writePaxRecords } from "./pax.ts";
import { fitsString, paxRecordsRaw } from "./pax_fields.ts";

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

/** Bodies given as a Uint8Array up to this size are copied in with their header: one chunk. */
export const INLINE_BODY_MAX = 64 * 1024;
/** {@link createTarStream} packs small entries of a synchronous iterable into chunks this big. */
export const BATCH_BYTES = 64 * 1024;

/**
 * Encodes one entry as chunks: PAX header (when needed), ustar header, body, padding. Errors
 * (a {@link KanikoError}) on an invalid header or a body whose length is not `header.size`.
 *
 * An entry without a body or with a Uint8Array body of at most {@link INLINE_BODY_MAX} bytes is
 * one chunk; a bigger Uint8Array body is yielded as it is between the headers and the padding;
 * a streamed body's chunks are passed through (after the header blocks, one chunk each).
 */
export async function* encodeEntry(
  header: TarHeader,
  body?: ReadableStream<Uint8Array> | Uint8Array,
): AsyncGenerator<Uint8Array, void, undefined> {
  if (isInline(body)) {
    yield encodeEntrySync(header, body);
    return;
  }
  const size = entrySize(header, body);
  if (body instanceof Uint8Array) {
    const l = layoutHeaders(header, size);
    const headers = new Uint8Array(l.length);
    writeHeaders(l, headers, 0);
    yield headers;
    if (size > 0) yield body;
  } else {
    yield* headerBlocks(header, size);
    yield* streamBody(body, size, header.name);
  }
  const pad = padding(size);
  if (pad > 0) yield new Uint8Array(pad);
}

/**
 * An entry whose body is in memory (or absent) as one new array: headers, body and padding, the
 * bytes {@link encodeEntry} yields, without the cost of a generator. Throws what
 * {@link encodeEntry} would. Meant for small bodies: the body is copied.
 */
export function encodeEntrySync(header: TarHeader, body?: Uint8Array): Uint8Array {
  const e = layoutInline(header, body);
  const out = new Uint8Array(e.entryLength);
  writeInline(e, out, 0);
  return out;
}

/** The two zero blocks that end an archive. */
export function endOfArchive(): Uint8Array {
  return new Uint8Array(2 * BLOCK_SIZE);
}

/**
 * A tar archive as a stream, pulled lazily from `entries` (so bodies are read only as the
 * consumer reads). Cancelling the stream cancels the body being read. From a synchronous
 * iterable, consecutive entries with small in-memory bodies are packed into chunks of about
 * {@link BATCH_BYTES}; an asynchronous one is read one entry per chunk (or more, for big bodies).
 */
export function createTarStream(
  entries: AsyncIterable<TarWriteEntry> | Iterable<TarWriteEntry>,
): ReadableStream<Uint8Array> {
  async function* chunks(): AsyncGenerator<Uint8Array, void, undefined> {
    if (Symbol.asyncIterator in entries) {
      for await (const { header, body } of entries) {
        if (isInline(body)) yield encodeEntrySync(header, body);
        else yield* encodeEntry(header, body);
      }
    } else {
      yield* batched(entries);
    }
    yield endOfArchive();
  }
  return ReadableStream.from(chunks());
}

/** True for the bodies that go in one chunk with their headers (falsy ones: no body). */
function isInline(
  body: ReadableStream<Uint8Array> | Uint8Array | undefined,
): body is Uint8Array | undefined {
  return !body || (body instanceof Uint8Array && body.length <= INLINE_BODY_MAX);
}

/**
 * The entries of a synchronous iterable, small ones packed together. An invalid entry ends the
 * archive where the one-chunk-per-entry writer would: the entries before it are handed out.
 */
async function* batched(
  entries: Iterable<TarWriteEntry>,
): AsyncGenerator<Uint8Array, void, undefined> {
  let batch: InlineLayout[] = [];
  let total = 0;
  const flush = () => {
    const out = new Uint8Array(total);
    let off = 0;
    for (const e of batch) {
      writeInline(e, out, off);
      off += e.entryLength;
    }
    batch = [];
    total = 0;
    return out;
  };
  for (let entry of entries) {
    if (isThenable(entry)) entry = await entry; // as `for await` would
    const { header, body } = entry;
    if (!isInline(body)) {
      if (batch.length > 0) yield flush();
      yield* encodeEntry(header, body);
      continue;
    }
    let e: InlineLayout;
    try {
      e = layoutInline(header, body);
    } catch (err) {
      if (batch.length > 0) yield flush();
      throw err;
    }
    if (batch.length > 0 && total + e.entryLength > BATCH_BYTES) yield flush();
    batch.push(e);
    total += e.entryLength;
  }
  if (batch.length > 0) yield flush();
}

function isThenable(v: unknown): v is PromiseLike<TarWriteEntry> {
  return typeof (v as PromiseLike<unknown> | null)?.then === "function";
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
      if (isInline(body)) await this.#write(encodeEntrySync(header, body));
      else for await (const chunk of encodeEntry(header, body)) await this.#write(chunk);
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
  checkId(h, "uid", h.uid);
  checkId(h, "gid", h.gid);
  checkId(h, "devmajor", h.devmajor);
  checkId(h, "devminor", h.devminor);
  if (h.mtime !== undefined && typeof h.mtime !== "bigint") {
    throw new KanikoError(`tar entry ${h.name}: mtime must be a bigint of nanoseconds`);
  }
}

function checkId(h: TarHeader, key: string, value: number | undefined): void {
  const v = value ?? 0;
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new KanikoError(`tar entry ${h.name}: invalid ${key} ${v}`);
  }
}

/** A string field to write: 7-bit ASCII as the string itself, anything else as UTF-8 bytes. */
type Text = string | Uint8Array;

/** Everything needed to write an entry's header blocks, checked and measured. */
interface HeaderLayout {
  h: TarHeader;
  /** Bytes of header blocks: PAX header, records and padding (when needed), ustar header. */
  length: number;
  /** The PAX records, when the entry needs them. */
  pax?: PaxLayout;
  /** The ustar `name` field's text (cut to 100 bytes when written) and where it starts. */
  name: Text;
  nameStart: number;
  /** Length of the ustar `prefix` (the start of `name`), 0 for none. */
  prefixLength: number;
  linkname: Text;
  /** Permission bits, masked. */
  mode: number;
  /** Typeflag byte. */
  typeflag: number;
  size: number;
  /** Whole seconds of the mtime, rounded down. */
  sec: bigint;
}

/** An entry written in one piece: its headers, then its body (if any) and padding. */
interface InlineLayout extends HeaderLayout {
  /** The in-memory body (absent: a size with no body is headers and padding only). */
  body?: Uint8Array;
  /** Bytes of the whole entry. */
  entryLength: number;
}

function layoutInline(header: TarHeader, body: Uint8Array | undefined): InlineLayout {
  const size = entrySize(header, body);
  const l = layoutHeaders(header, size) as InlineLayout;
  const inMemory = body instanceof Uint8Array;
  if (inMemory) l.body = body;
  l.entryLength = l.length + (inMemory ? size : 0) + padding(size);
  return l;
}

/** Writes an entry laid out by {@link layoutInline} at `buf[off]` (zero-filled). */
function writeInline(e: InlineLayout, buf: Uint8Array, off: number): void {
  writeHeaders(e, buf, off);
  if (e.body !== undefined && e.size > 0) buf.set(e.body, off + e.length);
}

/** Validates a header and works out its blocks (see {@link writeHeaders}). */
function layoutHeaders(h: TarHeader, size: number): HeaderLayout {
  validate(h);
  const name = h.name;
  const kind = textKind(name);
  let nameFits = false;
  let nameStart = 0;
  let prefixLength = 0;
  if (kind === PRINTABLE && name.length <= 256) {
    if (name.length <= 100) nameFits = true;
    else {
      let limit = Math.min(name.length, 156);
      if (limit === name.length && name.charCodeAt(name.length - 1) === 0x2f) limit--;
      const i = name.lastIndexOf("/", limit - 1);
      const rest = name.length - i - 1;
      if (i > 0 && rest <= 100 && rest !== 0) {
        nameFits = true;
        nameStart = i + 1;
        prefixLength = i;
      }
    }
  }
  const link = h.linkname ?? "";
  const linkKind = textKind(link);
  const linkFits = linkKind === PRINTABLE && link.length <= 100;
  const mtime = h.mtime ?? 0n;
  const records = paxRecordsRaw(h, size, mtime, nameFits, linkFits);
  const nameText = kind === NON_ASCII ? utf8(name) : name;
  if (!nameFits && typeof nameText !== "string") records[0][1] = nameText; // the path record
  const pax = records.length > 0 ? layoutPaxRecords(records) : undefined;
  const sec = mtime >= 0n ? mtime / NS : -((-mtime + NS - 1n) / NS);
  checkSeconds(sec);
  return {
    h,
    length: pax ? 2 * BLOCK_SIZE + pax.size + padding(pax.size) : BLOCK_SIZE,
    pax,
    name: nameText,
    nameStart,
    prefixLength,
    linkname: linkKind === NON_ASCII ? utf8(link) : link,
    mode: (h.mode ?? DEFAULT_MODE[h.type]) & 0o7777,
    typeflag: TYPEFLAG[h.type].charCodeAt(0),
    size,
    sec,
  };
}

/** Seconds a 12-byte base-256 field holds: 11 bytes of two's complement after the marker. */
const MIN_SEC = -(2n ** 88n);
const MAX_SEC = 2n ** 88n - 1n;
const MAX_OCTAL_SEC = BigInt(MAX_OCTAL_11);

/** Throws the error {@link writeNumber} would for an mtime that no header field can hold. */
function checkSeconds(sec: bigint): void {
  if (sec < MIN_SEC || sec > MAX_SEC) writeNumber(new Uint8Array(12), [0, 12], sec);
}

/**
 * Writes the header blocks of `l` at `buf[base]`, into zeros. Each block's checksum sums just
 * the ranges written (the rest of the block is zero), which is the sum of all its bytes. Throws
 * nothing: {@link layoutHeaders} checked everything that could fail.
 */
function writeHeaders(l: HeaderLayout, buf: Uint8Array, base: number): void {
  const { h, pax } = l;
  let off = base;
  if (pax) {
    const nameLength = writePaxHeaderName(buf, off, h.name);
    writeOctal(buf, off + 100, 8, 0o644);
    writeOctal(buf, off + 108, 8, 0);
    writeOctal(buf, off + 116, 8, 0);
    numberAt(buf, off + 124, 12, pax.size, MAX_OCTAL_11);
    mtimeAt(buf, off + 136, l.sec);
    buf[off + 156] = 0x78; // x
    buf.set(USTAR_MAGIC, off + 257);
    writeOctal(buf, off + 329, 8, 0);
    writeOctal(buf, off + 337, 8, 0);
    seal(buf, off, nameLength, 0, 0, 0, 0);
    writePaxRecords(buf, off + BLOCK_SIZE, pax);
    off = base + l.length - BLOCK_SIZE;
  }
  const nameLength = putText(buf, off, l.name, l.nameStart, 100);
  writeOctal(buf, off + 100, 8, l.mode);
  numberAt(buf, off + 108, 8, h.uid ?? 0, MAX_OCTAL_7);
  numberAt(buf, off + 116, 8, h.gid ?? 0, MAX_OCTAL_7);
  numberAt(buf, off + 124, 12, l.size, MAX_OCTAL_11);
  mtimeAt(buf, off + 136, l.sec);
  buf[off + 156] = l.typeflag;
  const linkLength = putText(buf, off + 157, l.linkname, 0, 100);
  buf.set(USTAR_MAGIC, off + 257);
  const uname = h.uname && fitsString(h.uname, 31) ? putText(buf, off + 265, h.uname, 0, 32) : 0;
  const gname = h.gname && fitsString(h.gname, 31) ? putText(buf, off + 297, h.gname, 0, 32) : 0;
  numberAt(buf, off + 329, 8, h.devmajor ?? 0, MAX_OCTAL_7);
  numberAt(buf, off + 337, 8, h.devminor ?? 0, MAX_OCTAL_7);
  const prefix = l.prefixLength > 0 ? putText(buf, off + 345, h.name, 0, l.prefixLength) : 0;
  seal(buf, off, nameLength, linkLength, uname, gname, prefix);
}

/**
 * Stores the checksum of the block at `buf[off]`, written only in: name (`name` bytes), the
 * numbers (100–147), typeflag and linkname (`link` bytes), magic, uname and gname, devices,
 * prefix. Checked against a full-block sum by the golden test.
 */
function seal(
  buf: Uint8Array,
  off: number,
  name: number,
  link: number,
  uname: number,
  gname: number,
  prefix: number,
): void {
  let sum = 8 * 0x20; // the checksum field itself, as spaces
  sum += sumBytes(buf, off, off + name);
  sum += sumBytes(buf, off + 100, off + 148);
  sum += sumBytes(buf, off + 156, off + 157 + link);
  sum += sumBytes(buf, off + 257, off + 265 + uname);
  sum += sumBytes(buf, off + 297, off + 297 + gname);
  sum += sumBytes(buf, off + 329, off + 345 + prefix);
  writeOctal(buf, off + 148, 7, sum);
  buf[off + 155] = 0x20;
}

function sumBytes(buf: Uint8Array, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += buf[i];
  return sum;
}

/** A numeric field: octal when `0 ≤ value ≤ max`, else as {@link writeNumber} writes it. */
function numberAt(buf: Uint8Array, off: number, len: number, value: number, max: number): void {
  if (value <= max) writeOctal(buf, off, len, value);
  else writeNumber(buf, [off, len], value);
}

function mtimeAt(buf: Uint8Array, off: number, sec: bigint): void {
  if (sec >= 0n && sec <= MAX_OCTAL_SEC) writeOctal(buf, off, 12, Number(sec));
  else writeNumber(buf, [off, 12], sec);
}

/**
 * Writes `text` from character (or byte) `start`, at most `max` bytes, at `buf[off]`; returns
 * how many bytes it wrote.
 */
function putText(buf: Uint8Array, off: number, text: Text, start: number, max: number): number {
  const n = Math.min(text.length - start, max);
  if (typeof text === "string") {
    for (let i = 0; i < n; i++) buf[off + i] = text.charCodeAt(start + i);
  } else {
    buf.set(n === text.length ? text : text.subarray(start, start + n), off);
  }
  return n;
}

/**
 * The PAX header's name, `<dir>/PaxHeaders.0/<base>` with non-printable characters as `_`, cut
 * to 100 bytes, written at `buf[off]`; returns its length.
 */
function writePaxHeaderName(buf: Uint8Array, off: number, name: string): number {
  let end = name.length;
  while (end > 0 && name.charCodeAt(end - 1) === 0x2f) end--;
  const slash = end > 0 ? name.lastIndexOf("/", end - 1) : -1;
  let n = 0;
  for (let i = 0; i <= slash && n < 100; i++) buf[off + n++] = printable(name.charCodeAt(i));
  for (let i = 0; i < PAX_DIR.length && n < 100; i++) buf[off + n++] = PAX_DIR.charCodeAt(i);
  for (let i = slash + 1; i < end && n < 100; i++) buf[off + n++] = printable(name.charCodeAt(i));
  return n;
}

const PAX_DIR = "PaxHeaders.0/";

function printable(c: number): number {
  return c >= 0x20 && c <= 0x7e ? c : 0x5f;
}

const PRINTABLE = 0;
const ASCII = 1;
const NON_ASCII = 2;

/** {@link PRINTABLE} (0x20–0x7e only), {@link ASCII} (7-bit) or {@link NON_ASCII}. */
function textKind(s: string): number {
  let kind = PRINTABLE;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) {
      if (c >= 0x80) return NON_ASCII;
      kind = ASCII;
    }
  }
  return kind;
}

/**
 * The header blocks of an entry with a streamed body, as before: PAX header, records, padding
 * and ustar header as separate chunks (nothing waits on the body to hand them out).
 */
function headerBlocks(h: TarHeader, size: number): Uint8Array[] {
  const l = layoutHeaders(h, size);
  const buf = new Uint8Array(l.length);
  writeHeaders(l, buf, 0);
  if (!l.pax) return [buf];
  const end = BLOCK_SIZE + l.pax.size;
  return [
    buf.slice(0, BLOCK_SIZE),
    buf.slice(BLOCK_SIZE, end),
    buf.slice(end, l.length - BLOCK_SIZE),
    buf.slice(l.length - BLOCK_SIZE),
  ];
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
