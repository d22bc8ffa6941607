/**
 * Emulation for simulated nodes of a foreign architecture — for the TEST HARNESS only; the
 * executor never emulates. As root, {@link registerQemu} fetches Debian's `qemu-user-static`
 * with `apt-get download` into `<repo>/.testbed/fake-k8s/qemu` (never `apt-get install`, which
 * would register handlers system-wide for good), extracts it with `dpkg-deb -x`, mounts
 * binfmt_misc when needed, and registers a handler `kaniko-test-qemu-<arch>-<pid>-<random>` with the
 * magic, mask and flags of the package's own binfmt file (`usr/lib/binfmt.d/qemu-<arch>.conf`;
 * the flags include F, so the interpreter is opened at registration and works inside chroots),
 * pointing at the extracted interpreter. `unregister()` (or `await using`) writes `-1` to the
 * entry. Stale entries of dead test processes are removed first. When emulation cannot be set
 * up (not root, no binfmt_misc, no apt), the result says why, so tests can skip cleanly.
 *
 * ```ts
 * const q = await registerQemu("linux/arm64");
 * if ("skip" in q) console.log(`skipped: ${q.skip}`); else await using _ = q;
 * ```
 * @module
 */
import { join } from "node:path";

/** Where the qemu package is cached: `<repo>/.testbed/fake-k8s`. */
export const CACHE_DIR = join(new URL("../../", import.meta.url).pathname, ".testbed", "fake-k8s");
const BINFMT = "/proc/sys/fs/binfmt_misc";
const PREFIX = "kaniko-test-qemu-";

/** qemu's name of a platform's architecture (undefined: none, or not foreign). */
export function qemuArch(platform: string): string | undefined {
  const arch = platform.split("/")[1];
  return ({
    arm64: "aarch64",
    arm: "arm",
    s390x: "s390x",
    ppc64le: "ppc64le",
    riscv64: "riscv64",
  } as Record<
    string,
    string
  >)[arch];
}

/** A registered handler. */
export interface QemuHandler extends AsyncDisposable {
  /** The binfmt_misc entry name. */
  name: string;
  /** The interpreter it runs. */
  interpreter: string;
  unregister(): Promise<void>;
}

async function sh(
  cmd: string,
  args: string[],
  cwd?: string,
): Promise<{ ok: boolean; out: string }> {
  try {
    const o = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
    const d = new TextDecoder();
    return { ok: o.success, out: (d.decode(o.stdout) + d.decode(o.stderr)).trim() };
  } catch (e) {
    return { ok: false, out: String(e) };
  }
}

function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Extracts qemu-user-static under the cache dir (downloading it once); returns the root. */
async function ensurePackage(): Promise<string | { skip: string }> {
  const dir = join(CACHE_DIR, "qemu");
  const root = join(dir, "root");
  if (exists(join(root, "usr/lib/binfmt.d"))) return root;
  await Deno.mkdir(dir, { recursive: true });
  let deb = [...Deno.readDirSync(dir)].find((e) => /^qemu-user-static_.*\.deb$/.test(e.name))?.name;
  if (!deb) {
    // download into a private dir, then move: a concurrent caller never sees a partial .deb
    const dl = await Deno.makeTempDir({ dir, prefix: "download-" });
    const r = await sh("apt-get", ["download", "qemu-user-static"], dl);
    deb = [...Deno.readDirSync(dl)].find((e) => /^qemu-user-static_.*\.deb$/.test(e.name))?.name;
    if (deb) await Deno.rename(join(dl, deb), join(dir, deb));
    await Deno.remove(dl, { recursive: true });
    if (!deb) {
      return { skip: `apt-get download qemu-user-static failed: ${r.out.split("\n").at(-1)}` };
    }
  }
  const tmp = `${root}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const x = await sh("dpkg-deb", ["-x", join(dir, deb), tmp]);
  if (!x.ok) return { skip: `dpkg-deb -x failed: ${x.out}` };
  // a concurrent extraction may have won the rename: then use its tree
  await Deno.rename(tmp, root).catch(() => Deno.remove(tmp, { recursive: true }));
  return root;
}

async function ensureBinfmt(): Promise<string | undefined> {
  if (exists(join(BINFMT, "register"))) return undefined;
  const r = await sh("mount", ["-t", "binfmt_misc", "binfmt_misc", BINFMT]);
  return exists(join(BINFMT, "register")) ? undefined : `binfmt_misc is unavailable: ${r.out}`;
}

/** Unregisters entries left by test processes that are gone. */
function removeStale(): void {
  for (const e of Deno.readDirSync(BINFMT)) {
    const m = e.name.match(/^kaniko-test-qemu-[a-z0-9_]+-(\d+)-[0-9a-f]+$/);
    if (m && !exists(`/proc/${m[1]}`)) {
      try {
        Deno.writeTextFileSync(join(BINFMT, e.name), "-1");
      } catch { /* raced with its owner */ }
    }
  }
}

/**
 * Registers a qemu-user-static handler for a platform (`linux/arm64`…) with binfmt_misc, or says
 * why it cannot ({ skip }).
 */
export async function registerQemu(platform: string): Promise<QemuHandler | { skip: string }> {
  const arch = qemuArch(platform);
  if (!arch) return { skip: `no qemu emulation for ${platform}` };
  if (Deno.uid() !== 0) return { skip: "registering binfmt_misc handlers needs root" };
  const noBinfmt = await ensureBinfmt();
  if (noBinfmt) return { skip: noBinfmt };
  const root = await ensurePackage();
  if (typeof root !== "string") return root;
  const conf = await Deno.readTextFile(join(root, `usr/lib/binfmt.d/qemu-${arch}.conf`)).catch(() =>
    ""
  );
  // :name:type:offset:magic:mask:interpreter:flags
  const f = conf.trim().split(":");
  if (f.length < 8 || f[2] !== "M") return { skip: `no usable binfmt entry for qemu-${arch}` };
  const interpreter = join(root, f[6]);
  if (!exists(interpreter)) return { skip: `missing interpreter ${interpreter}` };
  const flags = f[7].includes("F") ? f[7] : `${f[7]}F`;
  removeStale();
  // pid (for stale entries) and a random part: test modules of one process may register at once
  const name = `${PREFIX}${arch}-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const entry = join(BINFMT, name);
  if (exists(entry)) Deno.writeTextFileSync(entry, "-1");
  try {
    Deno.writeTextFileSync(
      join(BINFMT, "register"),
      `:${name}:M:${f[3]}:${f[4]}:${f[5]}:${interpreter}:${flags}`,
    );
  } catch (e) {
    return { skip: `could not register ${name}: ${e}` };
  }
  let done = false;
  const unregister = async () => {
    if (done) return;
    done = true;
    if (exists(entry)) await Deno.writeTextFile(entry, "-1");
  };
  return { name, interpreter, unregister, [Symbol.asyncDispose]: unregister };
}
