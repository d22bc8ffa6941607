/**
 * lib/fs/ffi.ts: dev_t encoding against glibc's own gnu_dev_* functions, the struct stat layout
 * against the pre-2.33 `__lxstat` entry point (the fallback), errno names and messages.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  devMajor,
  devMinor,
  errnoName,
  libc,
  makedev,
  STAT_LAYOUTS,
  statLayout,
  strerror,
} from "../../lib/fs/ffi.ts";
import { lstatNs } from "../../lib/fs/meta.ts";

const glibc = Deno.dlopen(
  "libc.so.6",
  {
    gnu_dev_makedev: { parameters: ["u32", "u32"], result: "u64" },
    gnu_dev_major: { parameters: ["u64"], result: "u32" },
    gnu_dev_minor: { parameters: ["u64"], result: "u32" },
  } as const,
);

Deno.test("makedev / major / minor match glibc's gnu_dev_* on 32-bit numbers", () => {
  try {
    const values = [0, 1, 3, 0xff, 0x100, 0xfff, 0x1000, 0xfffff, 0x100000, 0xabcdef, 0xffffffff];
    for (const major of values) {
      for (const minor of values) {
        const dev = makedev(major, minor);
        assert.equal(dev, BigInt(glibc.symbols.gnu_dev_makedev(major, minor)), `${major},${minor}`);
        const lo = Number(dev & 0xffffffffn);
        const hi = Number(dev >> 32n);
        assert.equal(devMajor(lo, hi), major);
        assert.equal(devMinor(lo, hi), minor);
        assert.equal(glibc.symbols.gnu_dev_major(dev), major);
        assert.equal(glibc.symbols.gnu_dev_minor(dev), minor);
      }
    }
  } finally {
    glibc.close();
  }
});

Deno.test("struct stat layout: lstat and the __lxstat fallback fill the same bytes", () => {
  const l = statLayout();
  assert.equal(l, STAT_LAYOUTS[Deno.build.arch as "x86_64" | "aarch64"]);
  assert.equal(l.size, Deno.build.arch === "x86_64" ? 144 : 128);
  const lib = libc();
  if (!lib.lstat || !lib.__lxstat) return; // only one entry point exported: nothing to compare
  const dir = Deno.makeTempDirSync();
  try {
    const f = join(dir, "f");
    Deno.writeTextFileSync(f, "12345");
    const path = new TextEncoder().encode(`${f}\0`);
    const a = new Uint8Array(l.size);
    const b = new Uint8Array(l.size);
    assert.equal(lib.lstat(path, a), 0);
    assert.equal(lib.__lxstat(l.statVer, path, b), 0);
    assert.deepEqual(a, b);
    const v = new DataView(a.buffer);
    assert.equal(v.getUint32(l.mode, true) & 0o170000, 0o100000);
    assert.equal(Number(v.getBigInt64(l.fileSize, true)), 5);
    assert.equal(lstatNs(f)!.size, 5);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("errno names and messages", () => {
  assert.equal(errnoName(13), "EACCES");
  assert.equal(errnoName(95), "ENOTSUP");
  assert.equal(errnoName(4242), "E4242");
  assert.equal(strerror(2), "No such file or directory");
  assert.equal(strerror(95), "Operation not supported");
});
