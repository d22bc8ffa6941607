/**
 * ADD: local archives (gzip, bzip2, xz, zstd, plain; detected by content) extracted with their
 * owners, non-archives copied as they are, unsafe archives refused; URLs from a local hono server
 * (mode 0600, Last-Modified, file name, --checksum); git repositories from a local `git daemon`
 * (.git removed unless --keep-git-dir, #ref:subdir, --checksum against the commit).
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { lstatNs } from "../../lib/fs/meta.ts";
import { type CopySource, copyStep } from "../../lib/build/copy.ts";
import { classifyAddSource, urlFileName } from "../../lib/build/add_sources.ts";
import { createTarStream } from "../../lib/tar/mod.ts";
import { rejects } from "../_helpers.ts";
import { bed, listTree } from "./copy_helpers.ts";

const f = (mode: string, owner: string, content: string) =>
  `file ${mode} ${owner} ${JSON.stringify(content)}`;

async function run(cmd: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command(cmd[0], { args: cmd.slice(1), cwd, stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

/** A context holding pkg/ packed as every kind of archive, owned 1234:5678 inside. */
async function archiveBed() {
  const b = await bed({
    "pkg/bin/tool": { content: "T", mode: 0o755 },
    "pkg/etc/conf": "C",
    "pkg/link": { symlink: "bin/tool" },
    "notes.txt": "plain text",
  });
  const tar = ["tar", "--owner=1234", "--group=5678", "--mtime=2001-02-03 04:05:06"];
  await run([...tar, "-cf", "p.tar", "pkg"], b.ctxDir);
  await run([...tar, "-czf", "p.tgz", "pkg"], b.ctxDir);
  await run(["sh", "-c", "bzip2 -c p.tar > p.tar.bz2 && xz -c p.tar > p.tar.xz"], b.ctxDir);
  await run(["sh", "-c", "zstd -q -c p.tar > p.tar.zst && gzip -c notes.txt > notes.gz"], b.ctxDir);
  return b;
}

Deno.test("ADD extracts local archives of every compression, keeping their owners", async (t) => {
  await using b = await archiveBed();
  for (const name of ["p.tar", "p.tgz", "p.tar.bz2", "p.tar.xz", "p.tar.zst"]) {
    await t.step(name, async () => {
      const dest = `/x/${name}`;
      const touched = await b.copy([name], dest, { kind: "ADD" });
      const tree = listTree(b.root);
      const at = dest.slice(1);
      assert.equal(tree[at], "dir 0755 0:0", "the destination is a directory, even without /");
      assert.equal(tree[`${at}/pkg/bin/tool`], f("0755", "1234:5678", "T"));
      assert.equal(tree[`${at}/pkg/etc/conf`], f("0644", "1234:5678", "C"));
      assert.equal(tree[`${at}/pkg/link`], "symlink 0777 1234:5678 -> bin/tool");
      assert.equal(tree[`${at}/pkg`], "dir 0755 1234:5678");
      const mtime = lstatNs(`${b.root}/${at}/pkg/etc/conf`)!.mtimeNs;
      assert.equal(mtime, BigInt(Date.parse("2001-02-03T04:05:06Z")) * 1_000_000n);
      assert.ok(touched.includes(`${at}/pkg/bin/tool`) && touched.includes(at));
    });
  }
  await t.step(
    "--chown overrides the archive's owners (BuildKit; buildah 1.28 keeps them)",
    async () => {
      await b.copy(["p.tgz"], "/own/", { kind: "ADD", chown: "7:8" });
      const tree = listTree(b.root);
      assert.equal(tree["own"], "dir 0755 7:8");
      assert.equal(tree["own/pkg/bin/tool"], f("0755", "7:8", "T"));
    },
  );
  await t.step("hard links in an archive are recreated", async () => {
    await run(
      ["sh", "-c", "mkdir h && echo L > h/one && ln h/one h/two && tar -cf h.tar h"],
      b.ctxDir,
    );
    await b.copy(["h.tar"], "/hard", { kind: "ADD" });
    const ino = (p: string) => lstatNs(`${b.root}/hard/h/${p}`)!.ino;
    assert.equal(ino("one"), ino("two"));
    assert.equal(listTree(b.root)["hard/h/two"], f("0644", "0:0", "L\n"));
  });
  await t.step("a non-archive, compressed or not, is copied as it is", async () => {
    await b.copy(["notes.txt", "notes.gz"], "/plain/", { kind: "ADD" });
    const tree = listTree(b.root);
    assert.equal(tree["plain/notes.txt"], f("0644", "0:0", "plain text"));
    assert.ok(tree["plain/notes.gz"].startsWith("file 0644 0:0"));
  });
  await t.step("COPY and ADD --unpack=false copy archives as files", async () => {
    await b.copy(["p.tgz"], "/c/");
    await b.copy(["p.tar.xz"], "/c/", { kind: "ADD", unpack: false });
    const tree = listTree(b.root);
    assert.ok(tree["c/p.tgz"].startsWith("file 0644 0:0"));
    assert.ok(tree["c/p.tar.xz"].startsWith("file 0644 0:0"));
    assert.equal(tree["c/pkg"], undefined);
  });
});

Deno.test("ADD refuses archive entries that climb out, and writes nothing outside", async () => {
  await using b = await bed();
  const outside = `${b.base}/outside`;
  Deno.mkdirSync(outside);
  const entries = [
    { header: { name: "ok.txt", type: "file" as const }, body: new TextEncoder().encode("ok") },
    { header: { name: "../../outside/evil", type: "file" as const }, body: new Uint8Array(1) },
  ];
  const bytes = new Uint8Array(await new Response(createTarStream(entries)).arrayBuffer());
  Deno.writeFileSync(`${b.ctxDir}/evil.tar`, bytes);
  const e = await rejects(b.copy(["evil.tar"], "/d/", { kind: "ADD" }));
  assert.equal(e.code, "UNSAFE_ARCHIVE");
  assert.match(e.message, /outside the extraction directory/);
  assert.deepEqual([...Deno.readDirSync(outside)], []);
});

Deno.test("ADD of archive entries under a symlink in the image stays inside the root", async () => {
  await using b = await bed();
  const outside = `${b.base}/outside`;
  Deno.mkdirSync(outside);
  Deno.mkdirSync(`${b.root}/d`);
  Deno.symlinkSync(outside, `${b.root}/d/sub`);
  const entries = [
    { header: { name: "sub/x", type: "file" as const }, body: new TextEncoder().encode("x") },
    { header: { name: "sub/", type: "dir" as const } },
  ];
  const bytes = new Uint8Array(await new Response(createTarStream(entries)).arrayBuffer());
  Deno.writeFileSync(`${b.ctxDir}/s.tar`, bytes);
  await b.copy(["s.tar"], "/d/", { kind: "ADD" });
  assert.deepEqual([...Deno.readDirSync(outside)], []);
  assert.equal(Deno.readTextFileSync(`${b.root}${outside}/x`), "x");
});

/** A local HTTP server for ADD URL tests. */
function httpServer() {
  const app = new Hono();
  app.get("/files/app.conf", (c) => {
    c.header("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT");
    return c.body("conf=1\n");
  });
  app.get("/files/nodate", (c) => c.body("no date"));
  app.get("/", (c) => c.body("root"));
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
  return { server, base: `http://127.0.0.1:${server.addr.port}` };
}

Deno.test("ADD of URLs", async (t) => {
  const { server, base } = httpServer();
  await using b = await bed();
  const add = (url: string, dest: string, extra = {}) =>
    copyStep({
      root: b.root,
      kind: "ADD",
      sources: [{ url }],
      patterns: [],
      dest,
      workdir: "/",
      ...extra,
    });
  try {
    await t.step("mode 0600, root, Last-Modified as mtime, named after the URL", async () => {
      const r = await add(`${base}/files/app.conf`, "/etc/app/");
      assert.deepEqual(r.touched, ["etc", "etc/app", "etc/app/app.conf"]);
      assert.equal(listTree(b.root)["etc/app/app.conf"], f("0600", "0:0", "conf=1\n"));
      const mtime = lstatNs(`${b.root}/etc/app/app.conf`)!.mtimeNs;
      assert.equal(mtime, BigInt(Date.parse("2015-10-21T07:28:00Z")) * 1_000_000n);
    });
    await t.step(
      "to a file name; no Last-Modified is the epoch; --chmod/--chown apply",
      async () => {
        await add(`${base}/files/nodate`, "/n", { chmod: "644", chown: "3:4" });
        assert.equal(listTree(b.root)["n"], f("0644", "3:4", "no date"));
        assert.equal(lstatNs(`${b.root}/n`)!.mtimeNs, 0n);
      },
    );
    await t.step("a URL without a path is __unnamed__", async () => {
      await add(`${base}/`, "/u/");
      assert.equal(listTree(b.root)["u/__unnamed__"], f("0600", "0:0", "root"));
    });
    await t.step("--checksum verified", async () => {
      const good = "sha256:" + await sha256("conf=1\n");
      await add(`${base}/files/app.conf`, "/sum/", { checksum: good });
      assert.ok(listTree(b.root)["sum/app.conf"]);
      const bad = "sha256:" + "0".repeat(64);
      const e = await rejects(add(`${base}/files/app.conf`, "/bad/", { checksum: bad }));
      assert.equal(e.code, "CHECKSUM");
      assert.match(
        e.message,
        /checksum mismatch: the content is sha256:[0-9a-f]{64}, --checksum wants/,
      );
      assert.equal(listTree(b.root)["bad"], undefined);
      const malformed = await rejects(add(`${base}/files/app.conf`, "/m/", { checksum: "md5:x" }));
      assert.match(malformed.message, /invalid --checksum/);
    });
    await t.step("HTTP errors name the URL", async () => {
      const e = await rejects(add(`${base}/missing`, "/x"));
      assert.match(e.message, /\/missing: the server answered HTTP 404/);
    });
  } finally {
    await server.shutdown();
  }
});

async function sha256(text: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(d)].map((x) => x.toString(16).padStart(2, "0")).join("");
}

Deno.test("ADD source kinds and URL file names", () => {
  assert.equal(classifyAddSource("https://example.com/a.tgz"), "url");
  assert.equal(classifyAddSource("https://github.com/moby/buildkit.git#v0.10.1"), "git");
  assert.equal(classifyAddSource("git@github.com:moby/buildkit.git"), "git");
  assert.equal(classifyAddSource("git://host/repo#main:sub"), "git");
  assert.equal(classifyAddSource("ssh://git@host/repo"), "git");
  assert.equal(classifyAddSource("src/*.go"), "local");
  assert.equal(classifyAddSource("github.com/moby/buildkit"), "local");
  assert.equal(urlFileName("https://h/a/b%20c.tgz?x=1"), "b c.tgz");
  assert.equal(urlFileName("https://h/dir/"), "dir");
  assert.equal(urlFileName("https://h"), "__unnamed__");
});

async function git(args: string[], cwd?: string): Promise<string> {
  const out = await new Deno.Command("git", {
    args,
    cwd,
    env: {
      GIT_AUTHOR_NAME: "t",
      GIT_AUTHOR_EMAIL: "t@example.com",
      GIT_COMMITTER_NAME: "t",
      GIT_COMMITTER_EMAIL: "t@example.com",
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`git ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout).trim();
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`nothing listens on ${port}`);
}

Deno.test("ADD of a git repository", async (t) => {
  await using b = await bed();
  const work = `${b.base}/work`;
  const srv = `${b.base}/srv`;
  Deno.mkdirSync(`${work}/sub`, { recursive: true });
  Deno.mkdirSync(srv);
  await git(["init", "-q", "-b", "main", work]);
  Deno.writeTextFileSync(`${work}/README`, "hello\n");
  Deno.writeTextFileSync(`${work}/sub/run.sh`, "#!/bin/sh\n");
  Deno.chmodSync(`${work}/sub/run.sh`, 0o755);
  await git(["add", "-A"], work);
  await git(["commit", "-q", "-m", "one"], work);
  await git(["tag", "v1"], work);
  const commit = await git(["rev-parse", "HEAD"], work);
  await git(["clone", "-q", "--bare", work, `${srv}/repo.git`]);
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const daemon = new Deno.Command("git", {
    args: [
      "daemon",
      "--export-all",
      "--reuseaddr",
      `--base-path=${srv}`,
      "--listen=127.0.0.1",
      `--port=${port}`,
      srv,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `git://127.0.0.1:${port}/repo.git`;
  const add = (source: string, dest: string, extra = {}) =>
    copyStep({
      root: b.root,
      kind: "ADD",
      sources: [{ git: source } as CopySource],
      patterns: [],
      dest,
      workdir: "/",
      ...extra,
    });
  try {
    await waitForPort(port);
    await t.step("the default branch, .git removed", async () => {
      await add(url, "/src");
      const tree = listTree(b.root);
      assert.equal(tree["src/README"], f("0644", "0:0", "hello\n"));
      assert.equal(tree["src/sub/run.sh"], f("0755", "0:0", "#!/bin/sh\n"));
      assert.equal(tree["src/.git"], undefined);
    });
    await t.step("#ref:subdir, --keep-git-dir, --chown", async () => {
      await add(`${url}#v1:sub`, "/s/", { chown: "9:9" });
      await add(`${url}#main`, "/k", { keepGitDir: true });
      const tree = listTree(b.root);
      assert.equal(tree["s/run.sh"], f("0755", "9:9", "#!/bin/sh\n"));
      assert.equal(tree["s/README"], undefined);
      assert.equal(tree["k/.git"]?.split(" ")[0], "dir");
    });
    await t.step("--checksum is the commit", async () => {
      await add(`${url}#main`, "/ok", { checksum: commit });
      const e = await rejects(add(`${url}#main`, "/bad", { checksum: "0".repeat(40) }));
      assert.match(e.message, new RegExp(`the commit is ${commit}`));
      assert.equal(listTree(b.root)["bad"], undefined);
    });
  } finally {
    daemon.kill("SIGTERM");
    await daemon.status;
  }
});
