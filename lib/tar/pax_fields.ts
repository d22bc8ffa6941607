/**
 * Mapping between PAX records and {@link TarHeader} fields: what the reader applies and what the
 * writer must emit when a value does not fit the ustar header.
 * @module
 */
import { KanikoError } from "../errors.ts";
import { FIELD, maxOctal, type TarEntryHeader, type TarHeader, utf8 } from "./header.ts";
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
  const out: Array<[string, Uint8Array]> = [];
  const add = (k: string, v: string | Uint8Array) =>
    out.push([k, typeof v === "string" ? utf8(v) : v]);
  if (!ustar.name) add("path", h.name);
  if (!ustar.linkname) add("linkpath", h.linkname ?? "");
  if (BigInt(h.size ?? 0) > maxOctal(FIELD.size[1])) add("size", String(h.size));
  if (BigInt(h.uid ?? 0) > maxOctal(FIELD.uid[1])) add("uid", String(h.uid));
  if (BigInt(h.gid ?? 0) > maxOctal(FIELD.gid[1])) add("gid", String(h.gid));
  if (!fitsString(h.uname, FIELD.uname[1] - 1)) add("uname", h.uname ?? "");
  if (!fitsString(h.gname, FIELD.gname[1] - 1)) add("gname", h.gname ?? "");
  const mtime = h.mtime ?? 0n;
  const sec = mtime / 1_000_000_000n;
  if (mtime % 1_000_000_000n !== 0n || mtime < 0n || sec > maxOctal(FIELD.mtime[1])) {
    add("mtime", formatPaxTime(mtime));
  }
  if (h.atime !== undefined) add("atime", formatPaxTime(h.atime));
  if (h.ctime !== undefined) add("ctime", formatPaxTime(h.ctime));
  if ((h.devmajor ?? 0) > Number(maxOctal(FIELD.devmajor[1]))) {
    add("SCHILY.devmajor", String(h.devmajor));
  }
  if ((h.devminor ?? 0) > Number(maxOctal(FIELD.devminor[1]))) {
    add("SCHILY.devminor", String(h.devminor));
  }
  for (const name of Object.keys(h.xattrs ?? {}).sort()) {
    if (!name || name.includes("=")) {
      throw new KanikoError(`tar entry ${h.name}: invalid xattr name "${name}"`);
    }
    add(SCHILY_XATTR + name, h.xattrs![name]);
  }
  for (const key of Object.keys(h.pax ?? {}).sort()) add(key, h.pax![key]);
  return out;
}

/** Which string fields fit the ustar header as they are. */
export interface UstarFit {
  name: boolean;
  linkname: boolean;
}

/** True when `s` is printable ASCII no longer than `len` bytes (else PAX carries it). */
export function fitsString(s: string | undefined, len: number): boolean {
  return s === undefined || (s.length <= len && /^[\x20-\x7e]*$/.test(s));
}
