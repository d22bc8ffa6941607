/**
 * Streaming tar reader: an async iterator over a `ReadableStream<Uint8Array>` that yields each
 * entry's header and a body stream. Understands ustar, PAX `x`/`g` headers (binary-safe values),
 * GNU `L`/`K` long names, base-256 numbers and old GNU formats; validates checksums; flags sparse
 * entries (not expanded) and fails clearly on truncated or corrupt archives.
 * @module
 */
import { KanikoError } from "../errors.ts";
import { ByteReader } from "./byte_reader.ts";
import {
  BLOCK_SIZE,
  decodeHeader,
  decodeText,
  isZeroBlock,
  padding,
  type RawHeader,
  readNumber,
  type TarEntryHeader,
  type TarEntryType,
} from "./header.ts";
import { parsePaxRecords, type PaxRecord } from "./pax.ts";
import { applyPax } from "./pax_fields.ts";

/** One entry: its header and its body (empty for everything but files). */
export interface TarEntry {
  /** The entry's metadata, with PAX and GNU extensions applied. */
  header: TarEntryHeader;
  /**
   * The body bytes. Read it (or cancel it) before asking for the next entry; an unread body is
   * skipped when the iterator moves on, and reading it afterwards errors.
   */
  body: ReadableStream<Uint8Array>;
}

/** Options for {@link readTar}. */
export interface ReadTarOptions {
  /** Names the archive in error messages (default `tar archive`). */
  name?: string;
  /** Largest PAX or GNU long-name header accepted, in bytes (default 16 MiB). */
  maxMetadataSize?: number;
}

const TYPES: Record<string, TarEntryType> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "S": "file",
  "1": "hardlink",
  "2": "symlink",
  "3": "char",
  "4": "block",
  "5": "dir",
  "D": "dir",
  "6": "fifo",
};
/** Typeflags whose entries never have a body, whatever their size field says (as Go reads). */
const HEADER_ONLY = new Set(["1", "2", "3", "4", "5", "6"]);

/** Extension headers seen before the entry they apply to. */
interface Pending {
  pax: PaxRecord[];
  longName?: Uint8Array;
  longLink?: Uint8Array;
}

/**
 * Iterates over the entries of a tar stream. Stopping early (`break`) cancels the stream; after
 * the end-of-archive blocks the rest of the stream is read and discarded, so that upstream
 * digest checks complete. A stream that ends cleanly at a block boundary without end blocks is
 * accepted, as GNU tar does; one that ends inside a header or body is an error.
 */
export async function* readTar(
  stream: ReadableStream<Uint8Array>,
  options: ReadTarOptions = {},
): AsyncGenerator<TarEntry, void, undefined> {
  const where = options.name ?? "tar archive";
  const maxMeta = options.maxMetadataSize ?? 16 << 20;
  const src = new ByteReader(stream);
  const globals = new Map<string, Uint8Array>();
  const late = lateReadError(where);
  let pending: Pending = { pax: [] };
  let finished = false;
  try {
    while (true) {
      const at = src.offset;
      const block = await src.readView(BLOCK_SIZE); // decoded before the next read
      if (block.length === 0 && !pending.pax.length && !pending.longName && !pending.longLink) {
        break;
      }
      if (block.length < BLOCK_SIZE) throw truncated(where, src.offset, "inside a header");
      if (isZeroBlock(block)) {
        await src.drain();
        break;
      }
      const raw = decodeHeader(block, `${where} at byte ${at}`);
      const metaWhere = `${where}: extension header at byte ${at}`;
      if (await readExtension(src, raw, { pending, globals, maxMeta, where: metaWhere })) continue;
      const header = buildHeader(raw, pending, globals, `${where} at byte ${at}`);
      pending = { pax: [] };
      if (raw.typeflag === "S") header.sparse = await readGnuSparse(src, block, where);
      const size = HEADER_ONLY.has(raw.typeflag) ? 0 : header.size;
      header.size = size;
      const body = new EntryBody(src, size, `${where}: entry ${header.name}`, late);
      yield { header, body: body.stream };
      await body.finish();
    }
    finished = true;
  } finally {
    if (!finished) await src.cancel();
    src.release();
  }
}

interface ExtensionState {
  pending: Pending;
  globals: Map<string, Uint8Array>;
  maxMeta: number;
  where: string;
}

/** Consumes a PAX or GNU long-name header; false when `raw` is an ordinary entry. */
async function readExtension(src: ByteReader, raw: RawHeader, st: ExtensionState) {
  const t = raw.typeflag;
  if (t !== "x" && t !== "X" && t !== "g" && t !== "L" && t !== "K" && t !== "V") return false;
  if (raw.size > BigInt(st.maxMeta)) {
    throw new KanikoError(`${st.where} is ${raw.size} bytes, more than ${st.maxMeta}`, {
      hint: "the archive is damaged or hostile",
    });
  }
  const size = Number(raw.size);
  const truncatedHere = () => truncated(st.where, src.offset, "inside an extension header");
  // Long names are kept until after the next header: a copy. PAX records are parsed from a view
  // before the next read (skipping the padding); a malformed one fails only after that skip, so
  // a truncated archive still says so first.
  const long = t === "L" || t === "K";
  const bytes = long ? await src.readExact(size) : await src.readView(size);
  if (bytes.length < size) throw truncatedHere();
  let records: PaxRecord[] = [];
  let malformed: { error: unknown } | undefined;
  if (t === "x" || t === "X" || t === "g") {
    try {
      records = parsePaxRecords(bytes, st.where);
    } catch (error) {
      malformed = { error };
    }
  }
  if ((await src.skip(padding(size))) < padding(size)) throw truncatedHere();
  if (malformed) throw malformed.error;
  if (t === "x" || t === "X") st.pending.pax.push(...records);
  else if (t === "g") {
    for (const [k, v] of records) {
      if (v.length === 0) st.globals.delete(k);
      else st.globals.set(k, v);
    }
  } else if (t === "L") st.pending.longName = stripNul(bytes);
  else if (t === "K") st.pending.longLink = stripNul(bytes);
  return true;
}

function buildHeader(
  raw: RawHeader,
  pending: Pending,
  globals: Map<string, Uint8Array>,
  where: string,
): TarEntryHeader {
  const name = decodeText(pending.longName ?? raw.name);
  let type = TYPES[raw.typeflag] ?? "file";
  if (raw.typeflag === "\0" && name.endsWith("/")) type = "dir";
  const header: TarEntryHeader = {
    name,
    type,
    size: safe(raw.size, "size", where),
    mode: raw.mode,
    uid: safe(raw.uid, "uid", where),
    gid: safe(raw.gid, "gid", where),
    uname: raw.uname,
    gname: raw.gname,
    mtime: raw.mtime * 1_000_000_000n,
    linkname: decodeText(pending.longLink ?? raw.linkname),
  };
  if (type === "char" || type === "block") {
    header.devmajor = raw.devmajor;
    header.devminor = raw.devminor;
  }
  if (globals.size === 0 && pending.pax.length === 0) return header;
  try {
    applyPax(header, [...globals.entries(), ...pending.pax]);
  } catch (e) {
    throw new KanikoError(`${where}: ${(e as Error).message}`, {
      hint: "the archive is damaged",
    });
  }
  return header;
}

/** Reads the old GNU sparse header's real size and skips its extension blocks. */
async function readGnuSparse(src: ByteReader, block: Uint8Array, where: string) {
  const realSize = Number(readNumber(block, [483, 12]));
  let extended = block[482] !== 0;
  while (extended) {
    const ext = await src.readExact(BLOCK_SIZE);
    if (ext.length < BLOCK_SIZE) throw truncated(where, src.offset, "inside a sparse header");
    extended = ext[504] !== 0;
  }
  return { format: "gnu", realSize };
}

/** The body stream of one entry, fed from the shared reader on demand. */
class EntryBody {
  readonly stream: ReadableStream<Uint8Array>;
  #src: ByteReader;
  #size: number;
  #remaining: number;
  #what: string;
  #pending?: Promise<void>;
  #ctrl!: ReadableStreamDefaultController<Uint8Array>;
  #closed = false;
  #detached = false;
  #error?: unknown;
  #late: () => KanikoError;

  constructor(src: ByteReader, size: number, what: string, late: () => KanikoError) {
    this.#late = late;
    this.#src = src;
    this.#size = size;
    this.#remaining = size;
    this.#what = what;
    this.stream = new ReadableStream<Uint8Array>({
      start: (c) => {
        this.#ctrl = c;
        if (size === 0) this.#close();
      },
      pull: (c) => (this.#pending = this.#pull(c)),
      cancel: () => {
        this.#closed = true;
      },
    }, { highWaterMark: 0 });
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ctrl.close();
  }

  async #pull(c: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    if (this.#detached) return;
    const chunk = await this.#src.read(this.#remaining);
    if (!chunk) {
      const done = this.#size - this.#remaining;
      this.#error = truncated(this.#what, this.#src.offset, `after ${done} of ${this.#size} bytes`);
      this.#closed = true;
      c.error(this.#error);
      return;
    }
    this.#remaining -= chunk.length;
    c.enqueue(chunk);
    if (this.#remaining === 0) this.#close();
  }

  /** Skips what the consumer left unread, then the padding; rethrows a truncation. */
  async finish(): Promise<void> {
    if (this.#pending) await this.#pending.catch(() => {});
    if (this.#error) throw this.#error;
    this.#detached = true;
    if (!this.#closed) {
      this.#closed = true;
      this.#ctrl.error(this.#late());
    }
    const left = this.#remaining + padding(this.#size);
    if ((await this.#src.skip(left)) < left) {
      throw truncated(this.#what, this.#src.offset, "inside its body");
    }
  }
}

/** One shared error per archive for bodies read too late (building one per entry is costly). */
function lateReadError(where: string): () => KanikoError {
  let err: KanikoError | undefined;
  return () => (err ??= new KanikoError(`${where}: an entry body was read after the next entry`));
}

function truncated(what: string, offset: number, detail: string): KanikoError {
  return new KanikoError(`${what}: archive truncated at byte ${offset}, ${detail}`, {
    hint: "the file or download is incomplete",
  });
}

function stripNul(bytes: Uint8Array): Uint8Array {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return bytes.subarray(0, end);
}

function safe(v: bigint, field: string, where: string): number {
  if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new KanikoError(`${where}: tar header ${field} ${v} is out of range`);
  }
  return Number(v);
}
