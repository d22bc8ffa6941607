/**
 * The build benchmark's context files, made once under `<state>/bench/build/` and reused:
 *
 * - `ctx-copy/files/`: `count` small files in 100 directories (`dNN/fNNNNN`), sizes 16–2,048 bytes and
 *   contents from a seeded xorshift stream per file, mtimes fixed (2024-01-01): the same bytes on
 *   every machine.
 * - `ctx-big/big.bin`: `size` bytes over 16 symbols from a seeded xorshift stream (gzip takes it to
 *   about half).
 *
 * The Dockerfiles name the registry (its port changes when the test bed restarts), so they are
 * written on every run ({@link writeDockerfile}).
 * @module
 */
import { dirname, join } from "node:path";

const VERSION = 1;
const MiB = 1024 * 1024;
/** mtime of every generated file and directory: 2024-01-01T00:00:00Z. */
const MTIME = new Date("2024-01-01T00:00:00Z");

function xorshift(seed: number): () => number {
  let x = (seed >>> 0) || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** `n` bytes over 16 printable symbols from `next`. */
function symbols(next: () => number, n: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(n / 4));
  for (let i = 0; i < words.length; i++) words[i] = next();
  const bytes = new Uint8Array(words.buffer, 0, n);
  for (let i = 0; i < n; i++) bytes[i] = 0x41 + (bytes[i] & 0x0f);
  return bytes;
}

/** Relative path of small file `i`. */
export function smallFilePath(i: number): string {
  return `d${String(i % 100).padStart(2, "0")}/f${String(i).padStart(5, "0")}`;
}

/** The original content of small file `i`. */
export function smallFileContent(i: number): Uint8Array {
  const size = 16 + (Math.imul(i + 1, 2654435761) >>> 0) % 2033;
  return symbols(xorshift(Math.imul(i + 1, 0x85ebca6b)), size);
}

/**
 * Directory `root` with `count` small files, made unless the JSON file `marker` (kept outside the
 * context) says it is there. Returns their total size.
 */
export async function ensureSmallFiles(
  root: string,
  marker: string,
  count: number,
  log: (s: string) => void,
): Promise<number> {
  try {
    const m = JSON.parse(await Deno.readTextFile(marker));
    if (m.version === VERSION && m.count === count) return m.bytes;
  } catch {
    // not made yet
  }
  log(`writing ${count} small files to ${root} ...`);
  await Deno.remove(marker).catch(() => {});
  await Deno.remove(root, { recursive: true }).catch(() => {});
  const dirs = new Set<string>();
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const rel = smallFilePath(i);
    const sub = join(root, rel.split("/")[0]);
    if (!dirs.has(sub)) {
      await Deno.mkdir(sub, { recursive: true });
      dirs.add(sub);
    }
    const content = smallFileContent(i);
    bytes += content.length;
    const path = join(root, rel);
    await Deno.writeFile(path, content, { mode: 0o644 });
    await Deno.utime(path, MTIME, MTIME);
  }
  for (const d of [...dirs, root]) await Deno.utime(d, MTIME, MTIME);
  await Deno.writeTextFile(marker, JSON.stringify({ version: VERSION, count, bytes }) + "\n");
  return bytes;
}

/** Rewrites small file `i` (with `tag` in it, or its original content when `tag` is undefined). */
export async function touchSmallFile(filesDir: string, i: number, tag?: string): Promise<void> {
  const path = join(filesDir, smallFilePath(i));
  const content = tag === undefined
    ? smallFileContent(i)
    : new TextEncoder().encode(`changed by the benchmark: ${tag}\n`);
  await Deno.writeFile(path, content);
  if (tag === undefined) await Deno.utime(path, MTIME, MTIME);
}

/** File `path` of `size` bytes, made unless it and the JSON file `marker` say it is there. */
export async function ensureBigFile(
  path: string,
  marker: string,
  size: number,
  log: (s: string) => void,
): Promise<void> {
  try {
    const m = JSON.parse(await Deno.readTextFile(marker));
    const st = await Deno.stat(path);
    if (m.version === VERSION && m.size === size && st.size === size) return;
  } catch {
    // not made yet
  }
  log(`writing ${size / MiB} MiB to ${path} ...`);
  await Deno.remove(marker).catch(() => {});
  await Deno.mkdir(dirname(path), { recursive: true });
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    const next = xorshift(0x9e3779b9);
    for (let left = size; left > 0;) {
      const chunk = symbols(next, Math.min(left, 4 * MiB));
      for (let off = 0; off < chunk.length;) off += await file.write(chunk.subarray(off));
      left -= chunk.length;
    }
  } finally {
    file.close();
  }
  await Deno.utime(path, MTIME, MTIME);
  await Deno.writeTextFile(marker, JSON.stringify({ version: VERSION, size }) + "\n");
}

/** Writes `<dir>/Dockerfile`. */
export async function writeDockerfile(dir: string, lines: string[]): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const path = join(dir, "Dockerfile");
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
  return path;
}
