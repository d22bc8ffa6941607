/**
 * PAX extended header records (`"%d %s=%s\n"`), with values kept as raw bytes so binary xattrs
 * (`SCHILY.xattr.security.capability`) survive, and PAX timestamps as exact bigint nanoseconds.
 * @module
 */
import { KanikoError } from "../errors.ts";
import { decodeText, utf8 } from "./header.ts";

/** One PAX record: key (UTF-8) and raw value. */
export type PaxRecord = [key: string, value: Uint8Array];

const decoder = new TextDecoder();

/**
 * PAX records ready to be written: keys checked, every key and value either a 7-bit ASCII string
 * (written as is) or its UTF-8 bytes, with the record lengths and their sum.
 */
export interface PaxLayout {
  keys: Array<string | Uint8Array>;
  values: Array<string | Uint8Array>;
  lengths: number[];
  /** Total encoded length in bytes. */
  size: number;
}

/** Checks the keys of `records` and measures them (see {@link writePaxRecords}). */
export function layoutPaxRecords(records: Iterable<[string, Uint8Array | string]>): PaxLayout {
  const keys: Array<string | Uint8Array> = [];
  const values: Array<string | Uint8Array> = [];
  const lengths: number[] = [];
  let size = 0;
  for (const [key, value] of records) {
    if (!validKey(key)) throw new KanikoError(`invalid PAX record key "${key}"`);
    const k = asciiOrBytes(key);
    const v = typeof value === "string" ? asciiOrBytes(value) : value;
    const base = k.length + v.length + 3; // space, '=', newline
    const digits = decimalDigits(base);
    let len = base + digits;
    if (decimalDigits(len) !== digits) len = base + decimalDigits(len);
    keys.push(k);
    values.push(v);
    lengths.push(len);
    size += len;
  }
  return { keys, values, lengths, size };
}

/** Writes laid-out records at `buf[off]` (`layout.size` bytes). */
export function writePaxRecords(buf: Uint8Array, off: number, layout: PaxLayout): void {
  const { keys, values, lengths } = layout;
  for (let r = 0; r < lengths.length; r++) {
    const len = lengths[r];
    const end = off + len;
    const head = writeDecimal(buf, off, len);
    buf[head] = 0x20;
    const eq = put(buf, head + 1, keys[r]);
    buf[eq] = 0x3d;
    put(buf, eq + 1, values[r]);
    buf[end - 1] = 0x0a;
    off = end;
  }
}

/** Encodes records in the given order; string values are UTF-8 encoded. */
export function encodePaxRecords(records: Iterable<[string, Uint8Array | string]>): Uint8Array {
  const layout = layoutPaxRecords(records);
  const out = new Uint8Array(layout.size);
  writePaxRecords(out, 0, layout);
  return out;
}

function validKey(key: string): boolean {
  if (!key) return false;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c === 0x3d || c === 0x0a || c === 0) return false;
  }
  return true;
}

/** `s` itself when it is 7-bit ASCII (its UTF-8 bytes are its char codes), else its UTF-8. */
function asciiOrBytes(s: string): string | Uint8Array {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return utf8(s);
  return s;
}

function put(buf: Uint8Array, off: number, v: string | Uint8Array): number {
  if (typeof v !== "string") {
    buf.set(v, off);
    return off + v.length;
  }
  for (let i = 0; i < v.length; i++) buf[off + i] = v.charCodeAt(i);
  return off + v.length;
}

function decimalDigits(n: number): number {
  let digits = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    digits++;
  }
  return digits;
}

/** Writes the decimal digits of a non-negative integer at `buf[off]`; returns the end. */
function writeDecimal(buf: Uint8Array, off: number, n: number): number {
  const end = off + decimalDigits(n);
  for (let i = end - 1; i >= off; i--) {
    const d = n % 10;
    buf[i] = 0x30 + d;
    n = (n - d) / 10;
  }
  return end;
}

/**
 * Parses PAX records, keeping their order and duplicates (PAX sparse 0.0 repeats keys). Throws a
 * {@link KanikoError} naming `where` on a malformed record.
 */
export function parsePaxRecords(bytes: Uint8Array, where: string): PaxRecord[] {
  const records: PaxRecord[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    if (bytes[pos] === 0) break; // NUL padding after the last record
    let sp = pos;
    let len = 0; // as Number() of the digits: exact up to 2^53, and beyond too big anyway
    while (sp < bytes.length && bytes[sp] >= 0x30 && bytes[sp] <= 0x39) {
      len = len * 10 + (bytes[sp] - 0x30);
      sp++;
    }
    if (sp === pos || bytes[sp] !== 0x20 || len <= sp - pos + 1 || pos + len > bytes.length) {
      throw bad(where, pos);
    }
    const record = bytes.subarray(sp + 1, pos + len);
    if (record[record.length - 1] !== 0x0a) throw bad(where, pos);
    const eq = record.indexOf(0x3d);
    if (eq <= 0) throw bad(where, pos);
    records.push([decodeText(record.subarray(0, eq)), record.slice(eq + 1, record.length - 1)]);
    pos += len;
  }
  return records;
}

function bad(where: string, pos: number): KanikoError {
  return new KanikoError(`${where}: malformed PAX extended header record at byte ${pos}`, {
    hint: "the archive is damaged",
  });
}

const NS = 1_000_000_000n;

/** Formats nanoseconds since the epoch as a PAX time: `sec[.fraction]`, no trailing zeros. */
export function formatPaxTime(ns: bigint): string {
  const neg = ns < 0n;
  const abs = neg ? -ns : ns;
  const sec = abs / NS;
  let frac = Number(abs - sec * NS);
  const whole = neg ? `-${sec}` : `${sec}`;
  if (frac === 0) return whole;
  let digits = 9;
  while (frac % 10 === 0) {
    frac /= 10;
    digits--;
  }
  return `${whole}.${String(frac).padStart(digits, "0")}`;
}

/** Parses a PAX time (`[-]sec[.fraction]`) to nanoseconds; digits past the 9th are dropped. */
export function parsePaxTime(text: string): bigint {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(text.trim());
  if (!m) throw new RangeError(`invalid PAX time "${text}"`);
  const frac = BigInt((m[3] ?? "").slice(0, 9).padEnd(9, "0"));
  const abs = BigInt(m[2]) * NS + frac;
  return m[1] ? -abs : abs;
}

/** Parses a PAX decimal integer record value (size, uid, gid, device numbers). */
export function parsePaxInt(value: Uint8Array, key: string): number {
  const text = decoder.decode(value).trim();
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new RangeError(`invalid PAX ${key} "${text}"`);
  }
  return Number(text);
}
