/**
 * The 512-byte tar header block: the {@link TarHeader} shape shared by the reader and writer,
 * numeric fields (octal and GNU base-256), checksums, and encoding/decoding of ustar and GNU
 * header blocks.
 * @module
 */
import { KanikoError } from "../errors.ts";

/** Size of a tar block; headers and bodies are padded to it. */
export const BLOCK_SIZE = 512;

/** Entry types we read and write. */
export type TarEntryType = "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo";

/** What the reader knows about a sparse entry (sparse files are flagged, not expanded). */
export interface TarSparseInfo {
  /** Format: `gnu` (old GNU `S` type) or `pax-0.0`, `pax-0.1`, `pax-1.0`. */
  format: string;
  /** Size of the expanded file, when the archive says it. */
  realSize?: number;
}

/**
 * One tar entry's metadata. Writers may leave optional fields out (defaults: size 0 or the body
 * length, mode 0o644 (0o755 for dirs), uid/gid 0, mtime 0, empty names). The reader always sets
 * `size`, `mode`, `uid`, `gid`, `uname`, `gname`, `mtime` and `linkname` (`""` when none).
 */
export interface TarHeader {
  /** Path inside the archive, UTF-8 (directories conventionally end with `/`). */
  name: string;
  /** Entry type. */
  type: TarEntryType;
  /** Body length in bytes; 0 for every type but `file` (read: also GNU dumpdir `D` directories). */
  size?: number;
  /** Permission bits including setuid/setgid/sticky (masked to 0o7777). */
  mode?: number;
  /** Owner user id. */
  uid?: number;
  /** Owner group id. */
  gid?: number;
  /** Owner user name. */
  uname?: string;
  /** Owner group name. */
  gname?: string;
  /** Modification time in nanoseconds since the epoch (bigint keeps every digit). */
  mtime?: bigint;
  /** Access time in nanoseconds since the epoch (PAX only; written only when set). */
  atime?: bigint;
  /** Status change time in nanoseconds since the epoch (PAX only; written only when set). */
  ctime?: bigint;
  /** Target of a symlink or hardlink. */
  linkname?: string;
  /** Device major number (char and block devices). */
  devmajor?: number;
  /** Device minor number (char and block devices). */
  devminor?: number;
  /** Extended attributes (`SCHILY.xattr.<name>`), values as raw bytes. */
  xattrs?: Record<string, Uint8Array>;
  /** Further PAX records, values as raw bytes (reader: every record it does not map to a field). */
  pax?: Record<string, Uint8Array>;
  /** Set by the reader on sparse entries; the body is then the raw sparse data, not the file. */
  sparse?: TarSparseInfo;
}

/** A header as the reader yields it: the always-present fields are filled in. */
export type TarEntryHeader =
  & TarHeader
  & Required<Pick<TarHeader, "size" | "mode" | "uid" | "gid" | "uname" | "gname" | "mtime">>
  & { linkname: string };

/** Field offsets and lengths of the ustar header. */
export const FIELD = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 6],
  version: [263, 2],
  uname: [265, 32],
  gname: [297, 32],
  devmajor: [329, 8],
  devminor: [337, 8],
  prefix: [345, 155],
} as const satisfies Record<string, readonly [number, number]>;

/** Typeflag characters by entry type. */
export const TYPEFLAG: Record<TarEntryType, string> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** UTF-8 bytes of a string. */
export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

/** `maxOctal(len)` for the field lengths a header has (1–12 bytes), as bigints and numbers. */
const MAX_OCTAL: readonly bigint[] = Array.from(
  { length: 13 },
  (_, len) => (len === 0 ? -1n : 8n ** BigInt(len - 1) - 1n),
);
/** Largest value of a 12-byte octal field (11 digits): 8589934591, exact as a number. */
export const MAX_OCTAL_11 = 0o77777777777;
/** Largest value of an 8-byte octal field (7 digits): 2097151. */
export const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_NUMBER: readonly number[] = MAX_OCTAL.map(Number);

/** Largest value an octal field of `len` bytes holds (one byte is kept for the terminator). */
export function maxOctal(len: number): bigint {
  return len >= 1 && len <= 12 && Number.isInteger(len)
    ? MAX_OCTAL[len]
    : 8n ** BigInt(len - 1) - 1n;
}

/**
 * Writes `n` (an integer, 0 ≤ n < 8^(len-1)) as `len - 1` zero-padded octal digits and a NUL at
 * `buf[off]`: the octal form of {@link writeNumber}, for callers that checked the range.
 */
export function writeOctal(buf: Uint8Array, off: number, len: number, n: number): void {
  let i = off + len - 1;
  buf[i] = 0;
  if (n <= 0x7fffffff) {
    while (--i >= off) {
      buf[i] = 0x30 | (n & 7);
      n >>>= 3;
    }
    return;
  }
  while (--i >= off) {
    const d = n % 8;
    buf[i] = 0x30 + d;
    n = (n - d) / 8;
  }
}

/**
 * Writes `value` into a numeric field: NUL-terminated zero-padded octal when it fits, else GNU
 * base-256 (which also covers negative values).
 */
export function writeNumber(
  block: Uint8Array,
  field: readonly [number, number],
  value: number | bigint,
): void {
  const off = field[0];
  const len = field[1];
  if (len >= 1 && len <= 12) {
    if (typeof value === "number") {
      if (value >= 0 && value <= MAX_OCTAL_NUMBER[len] && Number.isInteger(value)) {
        return writeOctal(block, off, len, value);
      }
    } else if (value >= 0n && value <= MAX_OCTAL[len]) {
      return writeOctal(block, off, len, Number(value));
    }
  }
  writeBase256(block, off, len, value);
}

/** The general case of {@link writeNumber}: octal through BigInt, or GNU base-256. */
function writeBase256(block: Uint8Array, off: number, len: number, value: number | bigint): void {
  const v = BigInt(value);
  if (v >= 0n && v <= maxOctal(len)) {
    const digits = v.toString(8).padStart(len - 1, "0");
    block.set(utf8(digits), off);
    block[off + len - 1] = 0;
    return;
  }
  let rest = v;
  for (let i = len - 1; i >= 1; i--) {
    block[off + i] = Number(BigInt.asUintN(8, rest));
    rest >>= 8n;
  }
  if (rest !== 0n && rest !== -1n) throw new RangeError(`${value} does not fit a tar field`);
  block[off] = v < 0n ? 0xff : 0x80;
}

/** Reads a numeric field (octal, or base-256 when the high bit of the first byte is set). */
export function readNumber(block: Uint8Array, field: readonly [number, number]): bigint {
  const v = readNumeric(block, field[0], field[1]);
  return typeof v === "number" ? BigInt(v) : v;
}

/**
 * {@link readNumber} at `block[off]`, `len` bytes: a number when the field is octal (at most 12
 * digits: exact), a bigint when it is base-256.
 */
export function readNumeric(block: Uint8Array, off: number, len: number): number | bigint {
  const first = block[off];
  if (first & 0x80) {
    let v = BigInt(first & 0x7f);
    if (first === 0xff) v = -1n;
    for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(block[off + i]);
    return v;
  }
  let i = off;
  const end = off + len;
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
  let v = 0;
  for (; i < end; i++) {
    const c = block[i];
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) throw new RangeError(`invalid octal digit in tar field at ${off}`);
    v = v * 8 + (c - 0x30);
  }
  return v;
}

/** Writes a string field, truncated to its length; returns false when it did not fit. */
export function writeString(
  block: Uint8Array,
  field: readonly [number, number],
  value: string | Uint8Array,
): boolean {
  const off = field[0];
  const len = field[1];
  const bytes = typeof value === "string" ? utf8(value) : value;
  block.set(bytes.length <= len ? bytes : bytes.subarray(0, len), off);
  return bytes.length <= len;
}

/** Reads a NUL-terminated string field as raw bytes. */
export function readBytes(block: Uint8Array, field: readonly [number, number]): Uint8Array {
  const [off, len] = field;
  let end = off;
  while (end < off + len && block[end] !== 0) end++;
  return block.subarray(off, end);
}

/** Reads a NUL-terminated string field as UTF-8. */
export function readString(block: Uint8Array, field: readonly [number, number]): string {
  return decodeText(readBytes(block, field));
}

/** UTF-8 text of `bytes` (as TextDecoder gives it), short ASCII without a TextDecoder call. */
export function decodeText(bytes: Uint8Array): string {
  const n = bytes.length;
  if (n === 0) return "";
  if (n > 16) return decoder.decode(bytes);
  for (let i = 0; i < n; i++) if (bytes[i] >= 0x80) return decoder.decode(bytes);
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}

/** Computes the header checksum (unsigned sum with the checksum field as spaces). */
export function checksum(block: Uint8Array): { unsigned: number; signed: number } {
  let unsigned = 8 * 0x20;
  let high = 0; // bytes ≥ 0x80, which count 256 less in the signed sum
  for (let i = 0; i < 148; i++) {
    const b = block[i];
    unsigned += b;
    high += b >> 7;
  }
  for (let i = 156; i < BLOCK_SIZE; i++) {
    const b = block[i];
    unsigned += b;
    high += b >> 7;
  }
  return { unsigned, signed: unsigned - 256 * high };
}

/** Stores the checksum of a finished header block (6 octal digits, NUL, space). */
export function sealHeader(block: Uint8Array): Uint8Array {
  let sum = 8 * 0x20; // the checksum field itself, as spaces
  for (let i = 0; i < 148; i++) sum += block[i];
  for (let i = 156; i < BLOCK_SIZE; i++) sum += block[i];
  writeOctal(block, 148, 7, sum); // at most 512 × 255: six digits and a NUL
  block[155] = 0x20;
  return block;
}

/** True when every byte of `block` is zero (an end-of-archive block). */
export function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

/** The raw fields of a header block, before PAX and GNU extensions are applied. */
export interface RawHeader {
  typeflag: string;
  name: Uint8Array;
  linkname: Uint8Array;
  mode: number;
  uid: bigint;
  gid: bigint;
  size: bigint;
  mtime: bigint;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** `ustar` (POSIX, prefix field used), `gnu` (old GNU magic) or `v7` (no magic). */
  format: "ustar" | "gnu" | "v7";
}

/**
 * Decodes a header block. Throws a {@link KanikoError} naming `where` (archive and byte offset)
 * when the checksum does not match or a numeric field is malformed.
 */
export function decodeHeader(block: Uint8Array, where: string): RawHeader {
  const stored = block.subarray(148, 156);
  let want: number; // a base-256 value too big for a number cannot equal a sum anyway
  try {
    want = Number(readNumeric(block, 148, 8));
  } catch {
    want = -1;
  }
  const sum = checksum(block);
  if (want !== sum.unsigned && want !== sum.signed) {
    const text = decoder.decode(stored).replace(/[^ -~]/g, "?");
    throw new KanikoError(
      `${where}: corrupt tar header (checksum "${text}" does not match ${sum.unsigned})`,
      { hint: "the archive is damaged or not a tar file" },
    );
  }
  try {
    return decodeFields(block);
  } catch (e) {
    throw new KanikoError(`${where}: corrupt tar header (${(e as Error).message})`, {
      hint: "the archive is damaged or not a tar file",
    });
  }
}

function decodeFields(block: Uint8Array): RawHeader {
  const format = isUstar(block) ? "ustar" : isOldGnu(block) ? "gnu" : "v7";
  let name = readBytes(block, FIELD.name);
  if (format === "ustar") {
    const prefix = readBytes(block, FIELD.prefix);
    if (prefix.length > 0) {
      const joined = new Uint8Array(prefix.length + 1 + name.length);
      joined.set(prefix);
      joined[prefix.length] = 0x2f;
      joined.set(name, prefix.length + 1);
      name = joined;
    }
  }
  const flag = block[156];
  const hasDev = format !== "v7";
  const linkname = readBytes(block, FIELD.linkname);
  const mode = readNumeric(block, 100, 8);
  const uid = readNumber(block, FIELD.uid);
  const gid = readNumber(block, FIELD.gid);
  const size = readNumber(block, FIELD.size);
  const mtime = readNumber(block, FIELD.mtime);
  const uname = format === "v7" ? "" : readString(block, FIELD.uname);
  const gname = format === "v7" ? "" : readString(block, FIELD.gname);
  return {
    typeflag: flag === 0 ? "\0" : String.fromCharCode(flag),
    name,
    linkname,
    mode: typeof mode === "number" ? mode & 0o7777 : Number(mode & 0o7777n),
    uid,
    gid,
    size,
    mtime,
    uname,
    gname,
    devmajor: hasDev ? Number(readNumeric(block, 329, 8)) : 0,
    devminor: hasDev ? Number(readNumeric(block, 337, 8)) : 0,
    format,
  };
}

/** POSIX magic: `ustar\0` (whatever the version bytes). */
function isUstar(b: Uint8Array): boolean {
  return b[257] === 0x75 && b[258] === 0x73 && b[259] === 0x74 && b[260] === 0x61 &&
    b[261] === 0x72 && b[262] === 0;
}

/** Old GNU magic and version: `ustar  \0`. */
function isOldGnu(b: Uint8Array): boolean {
  return b[257] === 0x75 && b[258] === 0x73 && b[259] === 0x74 && b[260] === 0x61 &&
    b[261] === 0x72 && b[262] === 0x20 && b[263] === 0x20 && b[264] === 0;
}

/** Fields of a ustar block to encode; numbers that do not fit octal are written base-256. */
export interface UstarFields {
  typeflag: string;
  name: Uint8Array;
  prefix?: Uint8Array;
  linkname?: Uint8Array;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: bigint;
  uname?: string;
  gname?: string;
  devmajor?: number;
  devminor?: number;
}

/** `ustar\0` magic and `00` version, at byte 257 of a POSIX header. */
export const USTAR_MAGIC: Uint8Array = Uint8Array.of(0x75, 0x73, 0x74, 0x61, 0x72, 0, 0x30, 0x30);

/** Encodes a POSIX ustar header block (magic `ustar\0`, version `00`) with its checksum. */
export function encodeUstar(f: UstarFields): Uint8Array {
  const block = new Uint8Array(BLOCK_SIZE);
  writeString(block, FIELD.name, f.name);
  writeNumber(block, FIELD.mode, f.mode & 0o7777);
  writeNumber(block, FIELD.uid, f.uid);
  writeNumber(block, FIELD.gid, f.gid);
  writeNumber(block, FIELD.size, f.size);
  writeNumber(block, FIELD.mtime, f.mtime);
  block[156] = f.typeflag.charCodeAt(0);
  if (f.linkname) writeString(block, FIELD.linkname, f.linkname);
  block.set(USTAR_MAGIC, 257);
  if (f.uname) writeString(block, FIELD.uname, f.uname);
  if (f.gname) writeString(block, FIELD.gname, f.gname);
  writeNumber(block, FIELD.devmajor, f.devmajor ?? 0);
  writeNumber(block, FIELD.devminor, f.devminor ?? 0);
  if (f.prefix) writeString(block, FIELD.prefix, f.prefix);
  return sealHeader(block);
}

/** Bytes of padding that follow `size` bytes of body to reach a block boundary. */
export function padding(size: number | bigint): number {
  if (typeof size === "number" && Number.isSafeInteger(size)) {
    const rem = size % BLOCK_SIZE;
    return rem === 0 ? 0 : BLOCK_SIZE - rem;
  }
  const rem = Number(BigInt(size) % BigInt(BLOCK_SIZE));
  return rem === 0 ? 0 : BLOCK_SIZE - rem;
}
