/**
 * COPY and ADD through real builds, checked on the pushed image read back with skopeo and umoci:
 * default owner root:root whatever the context's owner, `--chown` by name and id, `--chmod`,
 * wildcards, a directory's contents, trailing-slash rules, `--from` a stage and an external image,
 * `--parents`, `--exclude`, heredocs, ADD of a local tar.gz (extracted; COPY keeps it), ADD of a
 * URL from a local hono server (mode 0600, Last-Modified as mtime, `--checksum`, `--chmod`), ADD
 * of a git repository served by `git daemon` (a ref, `--keep-git-dir`, `--checksum` of the commit),
 * and each COPY/ADD layer holding only what it touched.
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  assertBuilt,
  build,
  engine,
  exec,
  noEngine,
  octal,
  type ReadImage,
  readImage,
  sha256,
  tagExists,
  tempDir,
  USERS,
  writeContext,
} from "./_engine.ts";

const REMOTE = "remote content\n";
const LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT";

/** A local HTTP server with `/remote.txt` (fixed Last-Modified); close it when done. */
function serveRemote(): { url: string; close: () => Promise<void> } {
  const app = new Hono();
  app.get("/remote.txt", (c) => {
    c.header("Last-Modified", LAST_MODIFIED);
    return c.body(REMOTE);
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  return { url: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
}

/** A tar.gz (made by the system's tar) with `inner/file` (0700) and `inner/link → file`. */
async function tarball(): Promise<Uint8Array> {
  await using tmp = await tempDir("kaniko-engine-tar-");
  await Deno.mkdir(`${tmp.path}/inner`);
  await Deno.writeTextFile(`${tmp.path}/inner/file`, "inner\n");
  await Deno.chmod(`${tmp.path}/inner/file`, 0o700);
  await Deno.symlink("file", `${tmp.path}/inner/link`);
  const r = await exec("tar", ["-czf", `${tmp.path}/x.tar.gz`, "-C", tmp.path, "inner"]);
  if (r.code !== 0) throw new Error(r.stderr);
  return await Deno.readFile(`${tmp.path}/x.tar.gz`);
}

function dockerfile(base: string, baseAmd64: string, url: string, sum: string): string {
  return `FROM ${base} AS first
RUN mkdir -p /built && echo from-stage > /built/artifact

FROM ${base}
ARG WHO=world
COPY etc/passwd etc/group /etc/
COPY a.txt /c/default/
COPY --chown=alice a.txt /c/chown-name/
COPY --chown=alice:extra a.txt /c/chown-name-group/
COPY --chown=1234:5678 a.txt /c/chown-id/
COPY --chmod=0751 a.txt /c/chmod/
COPY *.log /c/glob/
COPY dir /c/dircontents
COPY dir/ /c/dircontents-slash/
COPY a.txt /c/noslash
COPY a.txt b.txt /c/multi/
COPY --from=first /built/artifact /c/from-stage
COPY --from=${baseAmd64} /bin/busybox /c/from-image/
COPY --parents app/src/main.go app/lib/x.go /c/parents/
COPY --exclude=*.tmp excl /c/excluded/
COPY <<EOT /c/heredoc.txt
hello \${WHO}
EOT
ADD x.tar.gz /c/extracted/
COPY x.tar.gz /c/not-extracted/
ADD ${url}/remote.txt /c/url/
ADD --checksum=${sum} ${url}/remote.txt /c/url-checked
ADD --chmod=644 ${url}/remote.txt /c/url-chmod
WORKDIR /wd
COPY a.txt rel/
`;
}

let shared: Promise<{ img: ReadImage; tgz: Uint8Array }> | undefined;

/** Builds the COPY/ADD image once for every test of this file. */
function built(): Promise<{ img: ReadImage; tgz: Uint8Array }> {
  shared ??= (async () => {
    const e = await engine();
    const tgz = await tarball();
    const server = serveRemote();
    try {
      await using ctx = await writeContext({
        Dockerfile: dockerfile(e.base, e.baseAmd64, server.url, await sha256(REMOTE)),
        ...USERS,
        // Owned by someone else in the context: COPY still makes it root's.
        "a.txt": { content: "A\n", mode: 0o640, uid: 1234, gid: 4321 },
        "b.txt": "B\n",
        "dir/sub/c.txt": "C\n",
        "dir/d.txt": "D\n",
        "g1.log": "1\n",
        "g2.log": "2\n",
        "other.txt": "not a log\n",
        "app/src/main.go": "main\n",
        "app/lib/x.go": "lib\n",
        "app/README": "not copied\n",
        "excl/keep.txt": "keep\n",
        "excl/drop.tmp": "drop\n",
        "x.tar.gz": tgz,
      });
      const b = await build(e, ctx.path);
      assertBuilt(b);
      return { img: await readImage(e, `docker://${b.destination}`), tgz };
    } finally {
      await server.close();
    }
  })();
  return shared;
}

const opts = { ignore: noEngine, sanitizeResources: false, sanitizeOps: false };

/** `type mode uid:gid` of a path. */
function meta(img: ReadImage, path: string): string {
  const t = img.tree.get(path);
  return t ? `${t.type} ${octal(t.mode)} ${t.uid}:${t.gid}` : "absent";
}

Deno.test(
  "COPY: owner root:root by default, mode kept; --chown by name and id; --chmod",
  opts,
  async () => {
    const { img } = await built();
    assert.equal(meta(img, "c/default/a.txt"), "file 0o640 0:0");
    assert.equal(img.text("c/default/a.txt"), "A\n");
    assert.equal(meta(img, "c/default"), "dir 0o755 0:0");
    assert.equal(meta(img, "c/chown-name/a.txt"), "file 0o640 1500:1600");
    assert.equal(meta(img, "c/chown-name-group/a.txt"), "file 0o640 1500:1700");
    assert.equal(meta(img, "c/chown-id/a.txt"), "file 0o640 1234:5678");
    assert.equal(meta(img, "c/chmod/a.txt"), "file 0o751 0:0");
  },
);

Deno.test("COPY: wildcards, a directory's contents, trailing-slash rules", opts, async () => {
  const { img } = await built();
  assert.equal(img.text("c/glob/g1.log"), "1\n");
  assert.equal(img.text("c/glob/g2.log"), "2\n");
  assert.equal(img.tree.get("c/glob/other.txt"), undefined);
  for (const d of ["c/dircontents", "c/dircontents-slash"]) {
    assert.equal(img.text(`${d}/sub/c.txt`), "C\n", d);
    assert.equal(img.text(`${d}/d.txt`), "D\n", d);
    assert.equal(img.tree.get(`${d}/dir`), undefined, `${d}: the directory itself is not copied`);
  }
  assert.equal(meta(img, "c/noslash"), "file 0o640 0:0");
  assert.equal(img.text("c/multi/a.txt"), "A\n");
  assert.equal(img.text("c/multi/b.txt"), "B\n");
  assert.equal(img.text("wd/rel/a.txt"), "A\n", "a relative destination is under WORKDIR");
});

Deno.test(
  "COPY --from a stage and an external image; --parents; --exclude; heredoc",
  opts,
  async () => {
    const { img } = await built();
    assert.equal(img.text("c/from-stage"), "from-stage\n");
    assert.equal(img.tree.get("built"), undefined, "stages build in their own roots");
    const busybox = img.tree.get("c/from-image/busybox");
    assert.equal(busybox?.sha256, img.tree.get("bin/busybox")?.sha256);
    assert.equal(octal(busybox?.mode), "0o755");
    assert.equal(img.text("c/parents/app/src/main.go"), "main\n");
    assert.equal(img.text("c/parents/app/lib/x.go"), "lib\n");
    assert.equal(img.tree.get("c/parents/app/README"), undefined);
    assert.equal(img.text("c/excluded/keep.txt"), "keep\n");
    assert.equal(img.tree.get("c/excluded/drop.tmp"), undefined);
    assert.equal(img.text("c/heredoc.txt"), "hello world\n");
  },
);

Deno.test("ADD of a local tar.gz extracts it (COPY does not)", opts, async () => {
  const { img, tgz } = await built();
  assert.equal(meta(img, "c/extracted/inner/file"), "file 0o700 0:0");
  assert.equal(img.text("c/extracted/inner/file"), "inner\n");
  assert.equal(img.tree.get("c/extracted/inner/link")?.link, "file");
  assert.equal(
    "sha256:" + img.tree.get("c/not-extracted/x.tar.gz")?.sha256,
    await sha256(tgz),
  );
});

Deno.test("ADD URL: mode 0600, Last-Modified as mtime, --checksum, --chmod", opts, async () => {
  const { img } = await built();
  const mtime = Date.parse(LAST_MODIFIED) / 1000;
  const url = img.tree.get("c/url/remote.txt");
  assert.equal(meta(img, "c/url/remote.txt"), "file 0o600 0:0");
  assert.equal(url?.mtime, mtime);
  assert.equal(img.text("c/url/remote.txt"), REMOTE);
  assert.equal(img.text("c/url-checked"), REMOTE);
  assert.equal(meta(img, "c/url-chmod"), "file 0o644 0:0");
});

Deno.test("each COPY/ADD layer holds only what it touched", opts, async () => {
  const { img } = await built();
  const layerWith = (name: string) => img.layers.find((l) => l.names.includes(name))?.names;
  assert.deepEqual(layerWith("c/noslash"), ["c/", "c/noslash"]);
  assert.deepEqual(layerWith("c/chmod/a.txt"), ["c/", "c/chmod/", "c/chmod/a.txt"]);
  const history: Array<{ created_by: string; empty_layer?: boolean }> = img.config.history;
  const copies = history.filter((h) => /^(COPY|ADD) /.test(h.created_by));
  assert.equal(copies.length, 22);
  assert.ok(copies.every((h) => !h.empty_layer));
  assert.equal(history.filter((h) => !h.empty_layer).length, img.manifest.layers.length);
});

Deno.test(
  "ADD --checksum mismatch fails the build at its line and pushes nothing",
  opts,
  async () => {
    const e = await engine();
    const server = serveRemote();
    try {
      const wrong = await sha256("something else");
      await using ctx = await writeContext({
        Dockerfile: `FROM ${e.base}\nADD --checksum=${wrong} ${server.url}/remote.txt /r\n`,
      });
      const b = await build(e, ctx.path);
      assert.equal(b.code, 1, b.stderr);
      assert.match(b.stderr, /^error: Dockerfile:2: .*checksum/m);
      assert.ok(!(await tagExists(e, b.destination)));
    } finally {
      await server.close();
    }
  },
);

/** A git repository (`main`: README, sub/f) served by `git daemon` on a free port. */
async function gitServer(): Promise<{ url: string; commit: string } & AsyncDisposable> {
  const dir = await tempDir("kaniko-engine-git-");
  const git = async (args: string[], cwd = `${dir.path}/work`) => {
    const out = await new Deno.Command("git", {
      args: ["-c", "user.name=t", "-c", "user.email=t@t", ...args],
      cwd,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(`git ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
    }
    return new TextDecoder().decode(out.stdout).trim();
  };
  await Deno.mkdir(`${dir.path}/work/sub`, { recursive: true });
  await Deno.writeTextFile(`${dir.path}/work/README`, "readme\n");
  await Deno.writeTextFile(`${dir.path}/work/sub/f`, "f\n");
  await git(["init", "-q", "-b", "main"]);
  await git(["add", "."]);
  await git(["commit", "-qm", "init"]);
  const commit = await git(["rev-parse", "HEAD"]);
  await git(["clone", "-q", "--bare", ".", `${dir.path}/repo.git`]);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const daemon = new Deno.Command("git", {
    args: [
      "daemon",
      "--export-all",
      `--base-path=${dir.path}`,
      "--listen=127.0.0.1",
      `--port=${port}`,
      "--reuseaddr",
      "--informative-errors",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async () => {
    try {
      daemon.kill("SIGTERM");
    } catch { /* already gone */ }
    await daemon.status;
    await dir[Symbol.asyncDispose]();
  };
  for (let i = 0;; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch (e) {
      if (i > 100) {
        await stop();
        throw e;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return { url: `git://127.0.0.1:${port}/repo.git`, commit, [Symbol.asyncDispose]: stop };
}

Deno.test(
  "ADD of a git repository: a ref, --keep-git-dir, --checksum of the commit",
  opts,
  async () => {
    const e = await engine();
    await using server = await gitServer();
    await using ctx = await writeContext({
      Dockerfile: `FROM ${e.base}
ADD ${server.url}#main /src
ADD --keep-git-dir=true ${server.url} /src-git
ADD --checksum=${server.commit} ${server.url} /src-checked
`,
    });
    const b = await build(e, ctx.path);
    assertBuilt(b);
    const img = await readImage(e, `docker://${b.destination}`);
    for (const d of ["src", "src-git", "src-checked"]) {
      assert.equal(img.text(`${d}/README`), "readme\n", d);
      assert.equal(img.text(`${d}/sub/f`), "f\n", d);
    }
    assert.equal(img.tree.get("src/.git"), undefined, "the .git directory is dropped by default");
    assert.equal(img.tree.get("src-git/.git")?.type, "dir");
    assert.equal(meta(img, "src/README"), "file 0o644 0:0");
  },
);
