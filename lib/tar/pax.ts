/**
 * PAX extended header records (`"%d %s=%s\n"`), with values kept as raw bytes so binary xattrs
 * (`SCHILY.xattr.security.capability`) survive, and PAX timestamps as exact bigint nanoseconds.
 * @module
 */
import { concatBytes } from "../bytes.ts";
import { KanikoError } from "../errors.ts";
import { utf8 } from "./header.ts";

/** One PAX record: key (UTF-8) and raw value. */
export type PaxRecord = [key: string, value: Uint8Array];

const decoder = new TextDecoder();

/** Encodes records in the given order; string values are UTF-8 encoded. */
export function encodePaxRecords(records: Iterable<[string, Uint8Array | string]>): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const [key, value] of records) {
    if (!key || key.includes("=") || /[\n\0]/.test(key)) {
      throw new KanikoError(`invalid PAX record key "${key}"`);
    }
    const k = utf8(key);
    const v = typeof value === "string" ? utf8(value) : value;
    const base = k.length + v.length + 3; // space, '=', newline
    const digits = String(base).length;
    let len = base + digits;
    if (String(len).length !== digits) len = base + String(len).length;
    const record = new Uint8Array(len);
    const head = utf8(`${len} `);
    record.set(head);
    record.set(k, head.length);
    record[head.length + k.length] = 0x3d;
    record.set(v, head.length + k.length + 1);
    record[len - 1] = 0x0a;
    parts.push(record);
    total += len;
  }
  return concatBytes(parts, total);
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
    while (sp < bytes.length && bytes[sp] >= 0x30 && bytes[sp] <= 0x39) sp++;
    const len = Number(decoder.decode(bytes.subarray(pos, sp)));
    if (sp === pos || bytes[sp] !== 0x20 || len <= sp - pos + 1 || pos + len > bytes.length) {
      throw bad(where, pos);
    }
    const record = bytes.subarray(sp + 1, pos + len);
    if (record[record.length - 1] !== 0x0a) throw bad(where, pos);
    const eq = record.indexOf(0x3d);
    if (eq <= 0) throw bad(where, pos);
    records.push([decoder.decode(record.subarray(0, eq)), record.slice(eq + 1, record.length - 1)]);
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
  const frac = (abs % NS).toString().padStart(9, "0").replace(/0+$/, "");
  return `${neg ? "-" : ""}${sec}${frac ? `.${frac}` : ""}`;
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
