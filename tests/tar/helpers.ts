/**
 * Test helpers for the tar and OCI tests: running tools, xattrs through libc, stream utilities.
 * @module
 */
import { readTar, type TarEntryHeader } from "../../lib/tar/mod.ts";

/** True when running as root (chown, mknod and umoci unpack need it). */
export const isRoot: boolean = Deno.uid() === 0;

/** Result of {@link run}. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; throws with its stderr when it fails, unless `allowFail`. */
export async function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; allowFail?: boolean } = {},
): Promise<RunResult> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const result = {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
  if (out.code !== 0 && !options.allowFail) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}): ${result.stderr}`);
  }
  return result;
}

/** True when `cmd` can be run. */
export async function have(cmd: string): Promise<boolean> {
  try {
    await new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" }).output();
    return true;
  } catch {
    return false;
  }
}

/** Reads a whole stream into one array. */
export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A stream that serves `bytes` in chunks of `size` (a small size exercises every boundary). */
export function chunked(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    pull(c) {
      if (off >= bytes.length) return c.close();
      c.enqueue(bytes.slice(off, off + size));
      off += size;
    },
  });
}

/** An entry with its body read into memory. */
export interface ReadEntry {
  header: TarEntryHeader;
  body: Uint8Array;
}

/** Reads every entry of an archive, bodies included. */
export async function readEntries(stream: ReadableStream<Uint8Array>): Promise<ReadEntry[]> {
  const out: ReadEntry[] = [];
  for await (const e of readTar(stream)) {
    out.push({ header: e.header, body: await readAll(e.body) });
  }
  return out;
}

/** Hex of bytes. */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A fresh temporary directory, removed by the returned function. */
export async function tempDir(): Promise<{ dir: string; [Symbol.asyncDispose](): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "kaniko-test-" });
  return { dir, [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }) };
}

let libc:
  | Deno.DynamicLibrary<{
    lsetxattr: { parameters: ["buffer", "buffer", "buffer", "usize", "i32"]; result: "i32" };
    lgetxattr: { parameters: ["buffer", "buffer", "buffer", "usize"]; result: "isize" };
  }>
  | undefined;

function lib() {
  libc ??= Deno.dlopen(
    "libc.so.6",
    {
      lsetxattr: { parameters: ["buffer", "buffer", "buffer", "usize", "i32"], result: "i32" },
      lgetxattr: { parameters: ["buffer", "buffer", "buffer", "usize"], result: "isize" },
    } as const,
  );
  return libc.symbols;
}

function cstr(s: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(`${s}\0`);
}

/** Sets an xattr on a path (not following symlinks) through libc; false when unsupported. */
export function setXattr(path: string, name: string, value: Uint8Array): boolean {
  const v = new Uint8Array(value);
  return lib().lsetxattr(cstr(path), cstr(name), v, BigInt(v.length), 0) === 0;
}

/** Reads an xattr through libc; undefined when absent. */
export function getXattr(path: string, name: string): Uint8Array | undefined {
  const buf = new Uint8Array(65536);
  const n = Number(lib().lgetxattr(cstr(path), cstr(name), buf, BigInt(buf.length)));
  return n < 0 ? undefined : buf.slice(0, n);
}
