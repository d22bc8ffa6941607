/**
 * Hostile layers applied to a temp root: nothing outside the root may change (the root's parent
 * directory is snapshotted before and after, and the host's /etc/passwd and /etc/shadow are
 * checked), and every refusal is one line naming the layer and the entry.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { KanikoError } from "../../lib/errors.ts";
import { lstatNs } from "../../lib/fs/meta.ts";
import { applyLayer, type ApplyOptions } from "../../lib/rootfs/apply.ts";
import { createTarStream, type TarWriteEntry } from "../../lib/tar/mod.ts";

const enc = new TextEncoder();

function file(name: string, text: string, extra: Partial<TarWriteEntry["header"]> = {}) {
  return { header: { name, type: "file" as const, ...extra }, body: enc.encode(text) };
}
function symlink(name: string, linkname: string): TarWriteEntry {
  return { header: { name, type: "symlink", linkname } };
}
function hardlink(name: string, linkname: string): TarWriteEntry {
  return { header: { name, type: "hardlink", linkname } };
}
function dir(name: string, mode = 0o755): TarWriteEntry {
  return { header: { name, type: "dir", mode } };
}

function apply(root: string, entries: TarWriteEntry[], options: Partial<ApplyOptions> = {}) {
  return applyLayer(root, createTarStream(entries), { what: "evil:1 layer 1", ...options });
}

/** Everything under `dir` but `skip`: path → type, mode, owner, size, content hash, link, mtime. */
function snapshot(dir: string, skip: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (path: string) => {
    const m = lstatNs(path)!;
    let extra = "";
    if (m.type === "file") {
      extra = createHash("sha256").update(Deno.readFileSync(path)).digest("hex");
    } else if (m.type === "symlink") extra = Deno.readLinkSync(path);
    out.set(
      path,
      `${m.type} ${m.mode.toString(8)} ${m.uid}:${m.gid} ${m.size} ${m.mtimeNs} ${extra}`,
    );
    if (m.type === "dir") {
      for (const e of Deno.readDirSync(path)) {
        const child = `${path}/${e.name}`;
        if (child !== skip) walk(child);
      }
    }
  };
  walk(dir);
  return out;
}

function hostFile(path: string): string {
  const m = lstatNs(path);
  if (!m) return "absent";
  return `${m.mtimeNs} ${m.ctimeNs} ${m.size} ${
    createHash("sha256").update(Deno.readFileSync(path)).digest("hex")
  }`;
}

/**
 * Runs `fn` with a fresh root inside a base directory that also holds `outside/victim`; checks
 * afterwards that nothing outside the root changed.
 */
async function sandbox(fn: (root: string, outside: string) => Promise<void>): Promise<void> {
  const base = await Deno.makeTempDir({ prefix: "rootfs-sec-" });
  const root = `${base}/root`;
  const outside = `${base}/outside`;
  await Deno.mkdir(root);
  await Deno.mkdir(outside);
  await Deno.writeTextFile(`${outside}/victim`, "original");
  const host = ["/etc/passwd", "/etc/shadow", "/etc/x", "/x", "/victim"].map(hostFile);
  const before = snapshot(base, root);
  try {
    await fn(root, outside);
    assert.deepEqual(snapshot(base, root), before, "something outside the root changed");
    assert.deepEqual(
      ["/etc/passwd", "/etc/shadow", "/etc/x", "/x", "/victim"].map(hostFile),
      host,
      "a host file changed",
    );
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}

async function refused(p: Promise<unknown>, want: RegExp): Promise<KanikoError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof KanikoError, `expected a KanikoError, got ${e}`);
    assert.doesNotMatch(e.message, /\n/, "the error is one line");
    assert.match(e.message, /^evil:1 layer 1: /, "the error names the layer");
    assert.match(e.message, want);
    return e;
  }
  assert.fail(`expected a refusal matching ${want}`);
}

Deno.test("applyLayer: names climbing out with .. are refused", async () => {
  for (const name of ["../../etc/x", "../victim", "a/../../victim", "./../outside/victim"]) {
    await sandbox(async (root) => {
      const e = await refused(
        apply(root, [file(name, "pwned")]),
        /climbs out of the root with "\.\."/,
      );
      assert.match(
        e.message,
        new RegExp(`entry ${JSON.stringify(JSON.stringify(name)).slice(1, -1)}`),
      );
      assert.equal(e.code, "UNSAFE_LAYER");
    });
  }
  // `..` that stays inside is resolved lexically
  await sandbox(async (root) => {
    await apply(root, [file("a/../b", "fine")]);
    assert.equal(await Deno.readTextFile(`${root}/b`), "fine");
  });
});

Deno.test("applyLayer: absolute names land inside the root", async () => {
  await sandbox(async (root) => {
    await apply(root, [file("/etc/x", "inside"), file("//x", "top")]);
    assert.equal(await Deno.readTextFile(`${root}/etc/x`), "inside");
    assert.equal(await Deno.readTextFile(`${root}/x`), "top");
  });
});

Deno.test("applyLayer: a symlink to / in a parent is followed inside the root", async () => {
  await sandbox(async (root) => {
    await apply(root, [symlink("a", "/"), file("a/etc/passwd", "root-only")]);
    assert.equal(await Deno.readTextFile(`${root}/etc/passwd`), "root-only");
    assert.equal(Deno.readLinkSync(`${root}/a`), "/");
  });
});

Deno.test("applyLayer: a symlink climbing with .. stops at the root", async () => {
  await sandbox(async (root) => {
    await apply(root, [
      symlink("a", "../../.."),
      file("a/x", "clamped"),
      dir("sub/"),
      symlink("sub/up", "../../../../victim"),
      file("sub/up/y", "also clamped"),
    ]);
    assert.equal(await Deno.readTextFile(`${root}/x`), "clamped");
    assert.equal(await Deno.readTextFile(`${root}/victim/y`), "also clamped");
  });
});

Deno.test("applyLayer: a symlink to the host's absolute path is resolved in the root", async () => {
  await sandbox(async (root, outside) => {
    await apply(root, [symlink("a", outside), file("a/victim", "pwned"), dir("a/newdir/")]);
    assert.equal(await Deno.readTextFile(`${root}${outside}/victim`), "pwned");
    assert.ok(lstatNs(`${root}${outside}/newdir`)?.type === "dir");
  });
});

Deno.test("applyLayer: hard links out of the root are refused", async () => {
  await sandbox(async (root, outside) => {
    await refused(
      apply(root, [hardlink("h", "/etc/shadow")]),
      /hard link to "\/etc\/shadow", which is not in the root/,
    );
    await refused(
      apply(root, [hardlink("h", "../outside/victim")]),
      /hard link to "\.\.\/outside\/victim", outside the root/,
    );
    await refused(apply(root, [hardlink("h", `${outside}/victim`)]), /which is not in the root/);
    await refused(
      apply(root, [symlink("l", outside), hardlink("h", "l/victim")]),
      /hard link to "l\/victim", which is not in the root/,
    );
    await refused(
      apply(root, [symlink("up", ".."), hardlink("h", "up/outside/victim")]),
      /which is not in the root/,
    );
    await refused(apply(root, [hardlink("h", "missing")]), /which is not in the root/);
    await refused(apply(root, [dir("d/"), hardlink("h", "d")]), /which is a directory/);
    await refused(apply(root, [hardlink("h", ".")]), /the root itself/);
    assert.equal(lstatNs(`${root}/h`), undefined);
  });
  // an absolute target names the root's own file
  await sandbox(async (root) => {
    await apply(root, [file("etc/shadow", "image's own"), hardlink("h", "/etc/shadow")]);
    assert.equal(lstatNs(`${root}/h`)!.ino, lstatNs(`${root}/etc/shadow`)!.ino);
  });
});

Deno.test("applyLayer: symlink loops fail after 40 links, a self link is fine", async () => {
  await sandbox(async (root) => {
    await refused(
      apply(root, [symlink("a", "b"), symlink("b", "a"), file("a/x", "never")]),
      /entry "a\/x" cannot be written: too many levels of symbolic links/,
    );
    await refused(
      apply(root, [symlink("loop", "loop"), file("loop/x", "never")]),
      /too many levels of symbolic links/,
    );
    await refused(
      apply(root, [symlink("self", "./self/x"), dir("self/y/")]),
      /too many levels of symbolic links/,
    );
  });
  await sandbox(async (root) => {
    await apply(root, [dir("bin/"), symlink("bin/dash", "dash"), symlink("bin/sh", "/bin/sh")]);
    assert.equal(Deno.readLinkSync(`${root}/bin/dash`), "dash");
    assert.equal(Deno.readLinkSync(`${root}/bin/sh`), "/bin/sh");
  });
});

Deno.test("applyLayer: whiteouts that name nothing or climb out are refused", async () => {
  await sandbox(async (root) => {
    await apply(root, [file("keep", "k"), dir("a/"), file("a/keep", "k")]);
    for (const name of [".wh...", ".wh..", ".wh.", "a/.wh...", "a/.wh.", "a/b/../.wh.."]) {
      await refused(apply(root, [{ header: { name, type: "file" } }]), /is a whiteout of/);
    }
    await refused(
      apply(root, [{ header: { name: "../.wh.outside", type: "file" } }]),
      /climbs out/,
    );
    assert.equal(await Deno.readTextFile(`${root}/keep`), "k");
    assert.equal(await Deno.readTextFile(`${root}/a/keep`), "k");
  });
});

Deno.test("applyLayer: whiteouts through symlinked parents delete inside the root only", async () => {
  await sandbox(async (root, outside) => {
    await apply(root, [symlink("a", outside), symlink("up", "../..")]);
    await apply(root, [
      { header: { name: "a/.wh.victim", type: "file" } },
      { header: { name: "up/outside/.wh.victim", type: "file" } },
      { header: { name: "up/.wh..wh..opq", type: "file" } },
    ]);
    // the opaque whiteout of the root (reached through `up`) removed the lower symlinks
    assert.deepEqual(
      [...Deno.readDirSync(root)].map((e) => e.name).sort(),
      [
        outside.split("/")[1],
        "outside",
      ].sort(),
    );
  });
});

Deno.test("applyLayer: an opaque whiteout at the root empties the root, not more", async () => {
  await sandbox(async (root) => {
    await apply(root, [dir("etc/"), file("etc/passwd", "p"), symlink("lib", "usr/lib")]);
    await apply(root, [{ header: { name: ".wh..wh..opq", type: "file" } }, file("new", "n")]);
    assert.deepEqual([...Deno.readDirSync(root)].map((e) => e.name), ["new"]);
    assert.equal(lstatNs(root)?.type, "dir");
    await apply(root, [{ header: { name: "./.wh..wh..opq", type: "file" } }]);
    assert.deepEqual([...Deno.readDirSync(root)].map((e) => e.name), []);
  });
});

Deno.test("applyLayer: a directory replaced by a symlink is not written through", async () => {
  await sandbox(async (root, outside) => {
    await apply(root, [dir("d/", 0o700), file("d/f", "lower")]);
    // same layer: the dir entry's metadata must not reach the symlink's target at the end
    await apply(root, [dir("d/", 0o777), symlink("d", outside), file("d/victim", "pwned")]);
    assert.equal(Deno.readLinkSync(`${root}/d`), outside);
    assert.equal(await Deno.readTextFile(`${root}${outside}/victim`), "pwned");
  });
  await sandbox(async (root, outside) => {
    await apply(root, [dir("d/")]);
    await apply(root, [symlink("d", outside)]);
    await apply(root, [file("d/victim", "pwned"), dir("d/", 0o700)]);
    // the directory entry replaces the symlink; the file went into the root
    assert.equal(lstatNs(`${root}/d`)?.type, "dir");
    assert.equal(await Deno.readTextFile(`${root}${outside}/victim`), "pwned");
  });
});

Deno.test("applyLayer: planted symlinks at the final path are replaced, never followed", async () => {
  await sandbox(async (root, outside) => {
    await apply(root, [
      symlink("f", `${outside}/victim`),
      symlink("g", "../outside/victim"),
      symlink("h", `${outside}/victim`),
      symlink("dev", `${outside}/victim`),
    ]);
    await apply(root, [
      file("f", "replaced", { mode: 0o4755 }),
      file("g", "replaced"),
      { header: { name: "target", type: "file", mode: 0o600 }, body: enc.encode("t") },
      hardlink("h", "target"),
      { header: { name: "dev", type: "fifo", mode: 0o666 } },
    ], { devices: true });
    assert.equal(lstatNs(`${root}/f`)?.type, "file");
    assert.equal(await Deno.readTextFile(`${root}/g`), "replaced");
    assert.equal(lstatNs(`${root}/h`)!.ino, lstatNs(`${root}/target`)!.ino);
    assert.equal(lstatNs(`${root}/dev`)?.type, "fifo");
  });
});

Deno.test("applyLayer: entries that would replace the root are refused", async () => {
  await sandbox(async (root) => {
    for (
      const e of [file(".", "x"), file("./", "x"), symlink("/", "/tmp"), hardlink("a/..", "x")]
    ) {
      await refused(apply(root, [file("x", "x"), e]), /would replace the root itself/);
    }
    // the root's own directory entry is accepted and leaves the root alone
    const before = lstatNs(root)!;
    await apply(root, [dir("./", 0o700)]);
    assert.equal(lstatNs(root)!.mode, before.mode);
  });
});

Deno.test("applyLayer: NUL bytes in names and link targets are refused", async () => {
  await sandbox(async (root) => {
    const nul = enc.encode("a\0b");
    await refused(
      apply(root, [{
        header: { name: "x", type: "file", pax: { path: nul } },
        body: new Uint8Array(),
      }]),
      /has a NUL byte in its name/,
    );
    await refused(
      apply(root, [{
        header: { name: "x", type: "hardlink", linkname: "y", pax: { linkpath: nul } },
      }]),
      /hard link to .*NUL byte/,
    );
    assert.deepEqual([...Deno.readDirSync(root)], []);
  });
});

Deno.test("applyLayer: a parent that is a file is an error, not a replacement", async () => {
  await sandbox(async (root) => {
    await refused(
      apply(root, [file("a", "file"), file("a/b", "x")]),
      /entry "a\/b" cannot be written: its parent "a" is not a directory/,
    );
    assert.equal(await Deno.readTextFile(`${root}/a`), "file");
  });
});

Deno.test("applyLayer: ignored paths are never written or deleted", async () => {
  await sandbox(async (root) => {
    await Deno.mkdir(`${root}/kaniko`);
    await Deno.writeTextFile(`${root}/kaniko/executor`, "me");
    await Deno.mkdir(`${root}/var/run`, { recursive: true });
    await Deno.writeTextFile(`${root}/var/run/pid`, "1");
    await Deno.writeTextFile(`${root}/var/lower`, "l");
    const ignore = (p: string) => p === "kaniko" || p === "var/run";
    await apply(root, [
      file("kaniko/executor", "pwned"),
      file("kaniko/new", "pwned"),
      symlink("k", "kaniko"),
      file("k/executor", "pwned"),
      symlink("k2", "/kaniko/"),
      file("k2/x", "pwned"),
      hardlink("stolen", "kaniko/executor"),
      { header: { name: ".wh.kaniko", type: "file" } },
      { header: { name: "kaniko/.wh.executor", type: "file" } },
      { header: { name: "var/.wh..wh..opq", type: "file" } },
      file("var/run/pid", "2"),
    ], { ignore });
    assert.equal(await Deno.readTextFile(`${root}/kaniko/executor`), "me");
    assert.deepEqual([...Deno.readDirSync(`${root}/kaniko`)].map((e) => e.name), ["executor"]);
    assert.equal(lstatNs(`${root}/stolen`), undefined);
    assert.equal(await Deno.readTextFile(`${root}/var/run/pid`), "1");
    assert.equal(lstatNs(`${root}/var/lower`), undefined, "the opaque var lost its lower files");
    // deleting a directory that holds an ignored path keeps the ignored path and says so
    await refused(
      apply(root, [file("var", "now a file")], { ignore }),
      /would delete "var", which holds paths on the ignore list/,
    );
    assert.equal(await Deno.readTextFile(`${root}/var/run/pid`), "1");
    await refused(
      apply(root, [{ header: { name: ".wh.var", type: "file" } }], { ignore }),
      /entry "\.wh\.var" would delete "var"/,
    );
    assert.equal(await Deno.readTextFile(`${root}/var/run/pid`), "1");
  });
});

Deno.test("applyLayer: corrupt tar and refused entries give one line", async () => {
  await sandbox(async (root) => {
    const bytes = new Uint8Array(
      await new Response(createTarStream([file("a", "x".repeat(600))])).arrayBuffer(),
    );
    const e = await refused(
      applyLayer(root, ReadableStream.from([bytes.slice(0, 900)]), { what: "evil:1 layer 1" }),
      /truncated|ends/,
    );
    assert.doesNotMatch(e.message, /\n/);
    const sparse = (k: string, v: string) => [`GNU.sparse.${k}`, enc.encode(v)];
    await refused(
      apply(root, [{
        header: {
          name: "sparse",
          type: "file",
          pax: Object.fromEntries([
            sparse("major", "1"),
            sparse("minor", "0"),
            sparse("name", "s"),
            sparse("realsize", "10"),
          ]),
        },
        body: new Uint8Array(),
      }]),
      /entry "s" is a sparse file, which is not supported/,
    );
  });
});
