/**
 * Mapping between PAX records and {@link TarHeader} fields: what the reader applies and what the
 * writer must emit when a value does not fit the ustar header.
 * @module
 */
import { KanikoError } from "../errors.ts";
import {
  FIELD,
  MAX_OCTAL_11,
  MAX_OCTAL_7,
  type TarEntryHeader,
  type TarHeader,
  utf8,
} from "./header.ts";
import { formatPaxTime, parsePaxInt, parsePaxTime, type PaxRecord } from "./pax.ts";

const decoder = new TextDecoder();
const SCHILY_XATTR = "SCHILY.xattr.";
const LIBARCHIVE_XATTR = "LIBARCHIVE.xattr.";
const IGNORED = new Set(["hdrcharset", "charset", "comment"]);

/**
 * Applies PAX records (global ones first, then the entry's own) to a header in place.
 * Unmapped records land in `header.pax`; `GNU.sparse.*` records also set `header.sparse`.
 */
export function applyPax(header: TarEntryHeader, records: PaxRecord[]): void {
  const libarchive: PaxRecord[] = [];
  const sparse = new Map<string, string>();
  for (const [key, value] of records) {
    const text = () => decoder.decode(value);
    switch (key) {
      case "path":
        header.name = text();
        break;
      case "linkpath":
        header.linkname = text();
        break;
      case "size":
        header.size = parsePaxInt(value, key);
        break;
      case "uid":
      case "gid":
        header[key] = parsePaxInt(value, key);
        break;
      case "uname":
      case "gname":
        header[key] = text();
        break;
      case "mtime":
      case "atime":
      case "ctime":
        header[key] = parsePaxTime(text());
        break;
      case "SCHILY.devmajor":
        header.devmajor = parsePaxInt(value, key);
        break;
      case "SCHILY.devminor":
        header.devminor = parsePaxInt(value, key);
        break;
      default:
        if (key.startsWith(SCHILY_XATTR)) {
          (header.xattrs ??= {})[key.slice(SCHILY_XATTR.length)] = value;
        } else if (key.startsWith(LIBARCHIVE_XATTR)) {
          libarchive.push([key, value]);
        } else if (!IGNORED.has(key)) {
          if (key.startsWith("GNU.sparse.")) sparse.set(key.slice(11), text());
          (header.pax ??= {})[key] = value;
        }
    }
  }
  applyLibarchiveXattrs(header, libarchive);
  if (sparse.size > 0) applySparse(header, sparse);
}

function applyLibarchiveXattrs(header: TarEntryHeader, records: PaxRecord[]): void {
  for (const [key, value] of records) {
    const name = decodeURIComponent(key.slice(LIBARCHIVE_XATTR.length));
    if (header.xattrs?.[name] !== undefined) continue;
    const bin = atob(decoder.decode(value));
    (header.xattrs ??= {})[name] = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  }
}

function applySparse(header: TarEntryHeader, sparse: Map<string, string>): void {
  const major = sparse.get("major");
  const format = major === "1"
    ? `pax-1.${sparse.get("minor") ?? "0"}`
    : sparse.has("map")
    ? "pax-0.1"
    : "pax-0.0";
  const name = sparse.get("name");
  if (name) header.name = name;
  const real = sparse.get("realsize") ?? sparse.get("size");
  header.sparse = { format, realSize: real === undefined ? undefined : Number(real) };
}

/** The PAX records a header needs to be written faithfully, in a fixed order. */
export function paxRecordsFor(h: TarHeader, ustar: UstarFit): Array<[string, Uint8Array]> {
  const out = paxRecordsRaw(h, h.size ?? 0, h.mtime ?? 0n, ustar.name, ustar.linkname);
  for (const record of out) if (typeof record[1] === "string") record[1] = utf8(record[1]);
  return out as Array<[string, Uint8Array]>;
}

/**
 * {@link paxRecordsFor} with `size` and `mtime` (defaults applied) passed in and text values left
 * as strings (UTF-8 encoding is the record writer's job): what the tar writer uses.
 */
export function paxRecordsRaw(
  h: TarHeader,
  size: number,
  mtime: bigint,
  nameFits: boolean,
  linknameFits: boolean,
): Array<[string, Uint8Array | string]> {
  const out: Array<[string, Uint8Array | string]> = [];
  if (!nameFits) out.push(["path", h.name]);
  if (!linknameFits) out.push(["linkpath", h.linkname ?? ""]);
  if (above(size, MAX_OCTAL_11)) out.push(["size", String(size)]);
  if (above(h.uid, MAX_OCTAL_7)) out.push(["uid", String(h.uid)]);
  if (above(h.gid, MAX_OCTAL_7)) out.push(["gid", String(h.gid)]);
  if (!fitsString(h.uname, FIELD.uname[1] - 1)) out.push(["uname", h.uname ?? ""]);
  if (!fitsString(h.gname, FIELD.gname[1] - 1)) out.push(["gname", h.gname ?? ""]);
  if (mtime % 1_000_000_000n !== 0n || mtime < 0n || mtime > MAX_WHOLE_MTIME) {
    out.push(["mtime", formatPaxTime(mtime)]);
  }
  if (h.atime !== undefined) out.push(["atime", formatPaxTime(h.atime)]);
  if (h.ctime !== undefined) out.push(["ctime", formatPaxTime(h.ctime)]);
  if ((h.devmajor ?? 0) > MAX_OCTAL_7) out.push(["SCHILY.devmajor", String(h.devmajor)]);
  if ((h.devminor ?? 0) > MAX_OCTAL_7) out.push(["SCHILY.devminor", String(h.devminor)]);
  if (h.xattrs != null) {
    for (const name of Object.keys(h.xattrs).sort()) {
      if (!name || name.includes("=")) {
        throw new KanikoError(`tar entry ${h.name}: invalid xattr name "${name}"`);
      }
      out.push([SCHILY_XATTR + name, h.xattrs[name]]);
    }
  }
  if (h.pax != null) {
    for (const key of Object.keys(h.pax).sort()) out.push([key, h.pax[key]]);
  }
  return out;
}

/** Whole-second mtimes up to this many nanoseconds fit the 12-byte octal field (8^11 - 1 s). */
const MAX_WHOLE_MTIME = BigInt(MAX_OCTAL_11) * 1_000_000_000n + 999_999_999n;

/** `(v ?? 0) > max`, compared as the old BigInt code did (a fraction throws a RangeError). */
function above(v: number | undefined, max: number): boolean {
  const x = v ?? 0;
  return Number.isInteger(x) ? x > max : BigInt(x) > BigInt(max);
}

/** Which string fields fit the ustar header as they are. */
export interface UstarFit {
  name: boolean;
  linkname: boolean;
}

/** True when `s` is printable ASCII no longer than `len` bytes (else PAX carries it). */
export function fitsString(s: string | undefined, len: number): boolean {
  if (s === undefined) return true;
  if (!(s.length <= len)) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}
