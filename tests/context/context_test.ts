/**
 * prepareContext and loadDockerfile: local directories, sub-paths, tar contexts in every
 * compression (zstd with several frames), tar://stdin, https tarballs from a local TLS server with
 * a test CA, Dockerfile lookup and URLs, the choice of the ignore file, unsupported kinds.
 */
import assert from "node:assert/strict";
import zlib from "node:zlib";
import { Hono } from "hono";
import {
  type BuildContext,
  loadDockerfile,
  parseContextSpec,
  prepareContext,
  resolveSources,
} from "../../lib/context/mod.ts";
import { KanikoError, UsageError } from "../../lib/errors.ts";
import { captureLog, rejects } from "../_helpers.ts";

const enc = new TextEncoder();

async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

async function have(cmd: string): Promise<boolean> {
  try {
    return (await new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" })
      .output()).success;
  } catch {
    return false;
  }
}

/** A source tree, its tar in every compression, and a scratch directory. */
interface Archives {
  base: string;
  src: string;
  tar: Uint8Array;
  gz: Uint8Array;
  zst: Uint8Array;
  zstMulti: Uint8Array;
}

let archives: Promise<Archives> | undefined;
let archivesBase: string | undefined;

function getArchives(): Promise<Archives> {
  return archives ??= (async () => {
    const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "ctx-archives-" }));
    archivesBase = base;
    const src = `${base}/src`;
    await Deno.mkdir(`${src}/app/lib`, { recursive: true });
    await Deno.writeTextFile(`${src}/Dockerfile`, "FROM scratch\nCOPY app /app\n");
    await Deno.writeTextFile(`${src}/.dockerignore`, "*.log\n");
    await Deno.writeTextFile(`${src}/app/main.sh`, "#!/bin/sh\necho main\n");
    await Deno.chmod(`${src}/app/main.sh`, 0o755);
    await Deno.writeTextFile(`${src}/app/debug.log`, "noise");
    await Deno.writeTextFile(`${src}/app/lib/big.txt`, "0123456789abcdef".repeat(64 * 1024));
    await Deno.symlink("main.sh", `${src}/app/run`);
    await run("tar", ["-C", src, "-cf", `${base}/ctx.tar`, "."]);
    const tar = await Deno.readFile(`${base}/ctx.tar`);
    const gz = zlib.gzipSync(tar);
    let zst: Uint8Array;
    let zstMulti: Uint8Array;
    if (await have("zstd")) {
      await run("zstd", ["-q", "-f", `${base}/ctx.tar`, "-o", `${base}/ctx.tar.zst`]);
      zst = await Deno.readFile(`${base}/ctx.tar.zst`);
      // Two frames: each half of the tar compressed on its own, then concatenated.
      const half = Math.floor(tar.length / 2);
      await Deno.writeFile(`${base}/p1`, tar.slice(0, half));
      await Deno.writeFile(`${base}/p2`, tar.slice(half));
      await run("zstd", ["-q", "-f", `${base}/p1`, "-o", `${base}/p1.zst`]);
      await run("zstd", ["-q", "-f", `${base}/p2`, "-o", `${base}/p2.zst`]);
      zstMulti = new Uint8Array([
        ...await Deno.readFile(`${base}/p1.zst`),
        ...await Deno.readFile(`${base}/p2.zst`),
      ]);
    } else {
      zst = zlib.zstdCompressSync(tar);
      const half = Math.floor(tar.length / 2);
      zstMulti = new Uint8Array([
        ...zlib.zstdCompressSync(tar.slice(0, half)),
        ...zlib.zstdCompressSync(tar.slice(half)),
      ]);
    }
    return { base, src, tar, gz, zst, zstMulti };
  })();
}

async function checkUnpacked(ctx: BuildContext) {
  assert.equal(await Deno.readTextFile(`${ctx.root}/app/main.sh`), "#!/bin/sh\necho main\n");
  assert.equal((await Deno.stat(`${ctx.root}/app/main.sh`)).mode! & 0o777, 0o755);
  assert.equal((await Deno.readFile(`${ctx.root}/app/lib/big.txt`)).length, 16 * 64 * 1024);
  assert.equal(await Deno.readLink(`${ctx.root}/app/run`), "main.sh");
  assert.deepEqual(ctx.ignore.patterns, ["*.log"]);
  assert.equal(ctx.ignoreFile, `${ctx.root}/.dockerignore`);
  const { text } = await loadDockerfile(undefined, ctx);
  assert.equal(text, "FROM scratch\nCOPY app /app\n");
}

Deno.test("plain directory and dir://: used in place, never removed", async () => {
  const a = await getArchives();
  for (const spec of [a.src, `dir://${a.src}`, "src", "dir://src/"]) {
    const ctx = await prepareContext(spec, { cwd: a.base });
    assert.equal(ctx.root, a.src);
    assert.equal(ctx.kind, "dir");
    assert.equal(ctx.description, spec);
    assert.deepEqual(ctx.ignore.patterns, ["*.log"]);
    await ctx.cleanup();
    assert.ok((await Deno.stat(`${a.src}/Dockerfile`)).isFile);
  }
});

Deno.test("plain directory: missing, or a file, is one clear error", async () => {
  const a = await getArchives();
  const missing = await rejects(prepareContext(`${a.base}/nope`));
  assert.match(missing.message, /build context .*\/nope: .*\/nope does not exist/);
  const file = await rejects(prepareContext(`${a.base}/ctx.tar`));
  assert.match(file.message, /is not a directory/);
  assert.match(file.hint ?? "", /tar:\/\//);
});

Deno.test("--context-sub-path: a directory inside, never outside", async () => {
  const a = await getArchives();
  await using ctx = await prepareContext(a.src, { subPath: "app" });
  assert.equal(ctx.root, `${a.src}/app`);
  assert.deepEqual(await resolveSources(ctx, "main.sh"), ["main.sh"]);
  const up = await rejects(prepareContext(a.src, { subPath: "../src" }));
  assert.ok(up instanceof UsageError);
  assert.match(
    up.message,
    /--context-sub-path=\.\.\/src: the sub-directory must be a relative path/,
  );
  const notDir = await rejects(prepareContext(a.src, { subPath: "app/main.sh" }));
  assert.match(notDir.message, /"app\/main\.sh" is not a directory of the build context/);
  const link = `${a.base}/linkctx`;
  await Deno.mkdir(link, { recursive: true });
  await Deno.symlink(a.base, `${link}/out`).catch(() => {});
  const escape = await rejects(prepareContext(link, { subPath: "out" }));
  assert.match(escape.message, /--context-sub-path=out: "out" leads outside the build context/);
});

Deno.test("tar://: gzip, zstd (one and two frames) and plain, detected by content", async () => {
  const a = await getArchives();
  const cases: [string, Uint8Array][] = [
    ["ctx.gz.bin", a.gz],
    ["ctx.zst.bin", a.zst],
    ["ctx-multi.tar.gz", a.zstMulti], // a misleading extension: content decides
    ["ctx.plain", a.tar],
  ];
  const workDir = `${a.base}/work`;
  for (const [name, bytes] of cases) {
    await Deno.writeFile(`${a.base}/${name}`, bytes);
    const ctx = await prepareContext(`tar://${name}`, { cwd: a.base, workDir });
    try {
      assert.equal(ctx.kind, "tar");
      assert.ok(ctx.root.startsWith(`${workDir}/context-`), ctx.root);
      await checkUnpacked(ctx);
    } finally {
      await ctx.cleanup();
    }
    await assert.rejects(() => Deno.stat(ctx.root), Deno.errors.NotFound);
  }
  assert.deepEqual([...Deno.readDirSync(workDir)], []);
});

Deno.test("tar://: a corrupt or truncated archive fails and leaves nothing behind", async () => {
  const a = await getArchives();
  const workDir = `${a.base}/work-bad`;
  await Deno.writeFile(`${a.base}/cut.zst`, a.zstMulti.slice(0, a.zstMulti.length - 100));
  const err = await rejects(prepareContext(`tar://${a.base}/cut.zst`, { workDir }));
  assert.match(err.message, /^build context tar:\/\/.*cut\.zst: zstd data ends inside frame 2/);
  await Deno.writeFile(`${a.base}/cut.tar`, a.tar.slice(0, 3000));
  const err2 = await rejects(prepareContext(`tar://${a.base}/cut.tar`, { workDir }));
  assert.match(err2.message, /truncated/);
  await Deno.writeFile(`${a.base}/bz`, enc.encode("BZh91AY&SY....."));
  const bz = await rejects(prepareContext(`tar://${a.base}/bz`, { workDir }));
  assert.match(bz.message, /bzip2-compressed, which is not supported/);
  const missing = await rejects(prepareContext(`tar://${a.base}/none.tar`, { workDir }));
  assert.match(missing.message, /cannot open .*none\.tar/);
  const dir = await rejects(prepareContext(`tar://${a.src}`, { workDir }));
  assert.match(dir.hint ?? "", /dir:\/\//);
  assert.deepEqual([...Deno.readDirSync(workDir)], []);
});

Deno.test("tar://stdin: reads the given stream", async () => {
  const a = await getArchives();
  await using ctx = await prepareContext("tar://stdin", {
    stdin: new Blob([a.gz as Uint8Array<ArrayBuffer>]).stream(),
  });
  assert.equal(ctx.kind, "stdin");
  await checkUnpacked(ctx);
});

Deno.test("unsupported and malformed contexts: one clear usage error", async () => {
  const cases: [string, RegExp][] = [
    ["gs://bucket/ctx.tar.gz", /Google Cloud Storage contexts \(gs:\/\/\) are not supported/],
    ["s3://bucket/key", /Amazon S3 contexts \(s3:\/\/\) are not supported/],
    ["az://acct/blob", /Azure Blob Storage contexts \(az:\/\/\) are not supported/],
    ["ftp://host/x.tar", /the scheme ftp:\/\/ is not supported/],
    ["", /--context is empty/],
    ["tar://", /the archive path is missing/],
    ["git://", /the repository is missing/],
    ["git://host/repo#a#b#c", /too many # parts/],
    ["git://host/repo#main#zz", /"zz" is not a commit/],
  ];
  for (const [spec, want] of cases) {
    const err = await rejects(prepareContext(spec));
    assert.ok(err instanceof UsageError, spec);
    assert.match(err.message, want, spec);
    if (spec.includes("://") && spec !== "tar://" && spec !== "git://") {
      assert.ok(!err.message.includes("\n"));
    }
  }
  const gs = await rejects(prepareContext("gs://b/c"));
  assert.match(gs.hint ?? "", /tar:\/\/PATH, tar:\/\/stdin, an http\(s\):\/\/ tarball URL/);
});

Deno.test("parseContextSpec: kinds, git fragments, credentials taken out of URLs", () => {
  assert.deepEqual(parseContextSpec("/workspace"), { kind: "dir", path: "/workspace" });
  assert.deepEqual(parseContextSpec("tar://stdin"), { kind: "stdin" });
  assert.deepEqual(parseContextSpec("https://h/ctx.tar.gz"), {
    kind: "http",
    url: "https://h/ctx.tar.gz",
    credentials: undefined,
  });
  assert.deepEqual(parseContextSpec("https://u:p%40ss@h/ctx.tgz"), {
    kind: "http",
    url: "https://h/ctx.tgz",
    credentials: { username: "u", password: "p@ss" },
  });
  const git = parseContextSpec("git://github.com/org/repo#refs/heads/dev:sub/dir");
  assert.deepEqual(git, {
    kind: "git",
    url: "git://github.com/org/repo",
    pullMethodDefault: true,
    ref: "refs/heads/dev",
    subdir: "sub/dir",
    commit: undefined,
    urlCredentials: undefined,
  });
  const kaniko = parseContextSpec("git://github.com/org/repo#refs/heads/dev#0123456789abcdef");
  assert.equal(kaniko.kind === "git" && kaniko.commit, "0123456789abcdef");
  const https = parseContextSpec("https://TOKEN@github.com/org/repo.git#v1.0:docker");
  assert.deepEqual(https, {
    kind: "git",
    url: "https://github.com/org/repo.git",
    pullMethodDefault: false,
    ref: "v1.0",
    subdir: "docker",
    commit: undefined,
    urlCredentials: { username: "TOKEN", password: "" },
  });
  const ssh = parseContextSpec("git@github.com:org/repo.git#:sub");
  assert.deepEqual(ssh.kind === "git" && [ssh.url, ssh.ref, ssh.subdir], [
    "git@github.com:org/repo.git",
    undefined,
    "sub",
  ]);
});

/** A CA and a certificate for 127.0.0.1 signed by it, made with openssl. */
async function makeTls(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await run("openssl", [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    `${dir}/ca.key`,
    "-out",
    `${dir}/ca.pem`,
    "-days",
    "2",
    "-subj",
    "/CN=kaniko-deno test CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  await run("openssl", [
    "req",
    ...ec,
    "-keyout",
    `${dir}/leaf.key`,
    "-out",
    `${dir}/leaf.csr`,
    "-subj",
    "/CN=127.0.0.1",
  ]);
  await Deno.writeTextFile(
    `${dir}/leaf.ext`,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n" +
      "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
  );
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    `${dir}/leaf.csr`,
    "-CA",
    `${dir}/ca.pem`,
    "-CAkey",
    `${dir}/ca.key`,
    "-CAcreateserial",
    "-out",
    `${dir}/leaf.pem`,
    "-days",
    "2",
    "-extfile",
    `${dir}/leaf.ext`,
  ]);
  return {
    ca: `${dir}/ca.pem`,
    cert: await Deno.readTextFile(`${dir}/leaf.pem`),
    key: await Deno.readTextFile(`${dir}/leaf.key`),
  };
}

Deno.test("https:// tarballs and Dockerfile URLs from a TLS server with a test CA", async (t) => {
  const a = await getArchives();
  const tlsDir = `${a.base}/tls`;
  await Deno.mkdir(tlsDir, { recursive: true });
  const tls = await makeTls(tlsDir);
  const seen: { path: string; auth: string | undefined }[] = [];
  const app = new Hono();
  app.use("*", async (c, next) => {
    seen.push({ path: c.req.path, auth: c.req.header("authorization") });
    await next();
  });
  const body = (bytes: Uint8Array) => new Response(bytes as Uint8Array<ArrayBuffer>);
  app.get("/ctx.tar.gz", () => body(a.gz));
  app.get("/ctx", () => body(a.zstMulti));
  app.get("/moved", (c) => c.redirect("/ctx.tar.gz", 302));
  app.get("/private.tar", (c) => {
    const want = "Basic " + btoa("builder:s3cr3t-pass");
    return c.req.header("authorization") === want ? body(a.tar) : c.text("no", 401);
  });
  app.get("/Dockerfile.remote", (c) => c.text("FROM busybox\nRUN true\n"));
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: tls.cert,
    key: tls.key,
    onListen: () => {},
  }, app.fetch);
  const base = `https://127.0.0.1:${server.addr.port}`;
  const http = { hostSettings: () => ({ allowHttp: true, skipVerify: false, caFile: tls.ca }) };
  try {
    await t.step("gzip tarball", async () => {
      await using ctx = await prepareContext(`${base}/ctx.tar.gz`, { http });
      assert.equal(ctx.kind, "http");
      await checkUnpacked(ctx);
    });
    await t.step("multi-frame zstd tarball without an extension, after a redirect", async () => {
      await using ctx = await prepareContext(`${base}/ctx`, { http });
      await checkUnpacked(ctx);
      await using moved = await prepareContext(`${base}/moved`, { http });
      await checkUnpacked(moved);
    });
    await t.step("credentials in the URL: Basic auth, removed from the description", async () => {
      const spec = `https://builder:s3cr3t-pass@127.0.0.1:${server.addr.port}/private.tar`;
      await using ctx = await prepareContext(spec, { http });
      assert.equal(
        ctx.description,
        `https://builder:***@127.0.0.1:${server.addr.port}/private.tar`,
      );
      assert.ok(existsSync(`${ctx.root}/app/main.sh`));
      const bad = await rejects(
        prepareContext(`https://builder:wrong-pass@127.0.0.1:${server.addr.port}/private.tar`, {
          http,
        }),
      );
      assert.match(bad.message, /answered HTTP 401/);
      assert.ok(!bad.message.includes("wrong-pass"));
    });
    await t.step("HTTP errors name the context", async () => {
      const err = await rejects(prepareContext(`${base}/missing.tar`, { http }));
      assert.equal(err.message, `build context ${base}/missing.tar: the server answered HTTP 404`);
      assert.equal(err.hint, "check the URL");
    });
    await t.step("an unknown CA is a TLS error with a hint", async () => {
      const err = await rejects(prepareContext(`${base}/ctx.tar.gz`));
      assert.equal(err.code, "TLS");
      assert.match(err.message, /^build context https:\/\/127\.0\.0\.1:\d+\/ctx\.tar\.gz: TLS/);
      assert.match(err.hint ?? "", /DENO_CERT/);
    });
    await t.step("the Dockerfile from a URL", async () => {
      await using ctx = await prepareContext(a.src);
      const df = await loadDockerfile(`${base}/Dockerfile.remote`, ctx, { http });
      assert.equal(df.text, "FROM busybox\nRUN true\n");
      assert.equal(df.name, `${base}/Dockerfile.remote`);
      const err = await rejects(loadDockerfile(`${base}/nope`, ctx, { http }));
      assert.match(
        err.message,
        /Dockerfile https:\/\/127\.0\.0\.1:\d+\/nope: the server answered HTTP 404/,
      );
    });
    assert.ok(seen.every((s) => s.path !== "/private.tar" || s.auth?.startsWith("Basic ")));
  } finally {
    await server.shutdown();
  }
});

function existsSync(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("loadDockerfile: context, current directory, absolute, lower-case default", async () => {
  const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "ctx-df-" }));
  try {
    const ctxDir = `${base}/ctx`;
    const cwd = `${base}/cwd`;
    await Deno.mkdir(`${ctxDir}/docker`, { recursive: true });
    await Deno.mkdir(cwd);
    await Deno.writeTextFile(`${ctxDir}/Dockerfile`, "FROM context\n");
    await Deno.writeTextFile(`${ctxDir}/docker/app.Dockerfile`, "FROM app\n");
    await Deno.writeTextFile(`${cwd}/Dockerfile`, "FROM cwd\n");
    await Deno.writeTextFile(`${cwd}/other.Dockerfile`, "FROM cwd-other\n");
    await Deno.writeTextFile(`${ctxDir}/other.Dockerfile`, "FROM context-other\n");
    await using ctx = await prepareContext(ctxDir, { cwd });
    // The default: the context first.
    assert.equal((await loadDockerfile(undefined, ctx, { cwd })).text, "FROM context\n");
    assert.equal((await loadDockerfile("Dockerfile", ctx, { cwd })).text, "FROM context\n");
    // An explicit relative path: the current directory first (Kaniko), then the context.
    assert.equal((await loadDockerfile("other.Dockerfile", ctx, { cwd })).text, "FROM cwd-other\n");
    const app = await loadDockerfile("docker/app.Dockerfile", ctx, { cwd });
    assert.deepEqual([app.text, app.name], ["FROM app\n", "docker/app.Dockerfile"]);
    assert.equal((await loadDockerfile(`${cwd}/Dockerfile`, ctx, { cwd })).text, "FROM cwd\n");
    const missing = await rejects(loadDockerfile("nope/Dockerfile", ctx, { cwd }));
    assert.equal(missing.code, "DOCKERFILE_NOT_FOUND");
    assert.match(missing.message, /^Dockerfile "nope\/Dockerfile" \(context .*\): not found/);
    const absMissing = await rejects(loadDockerfile(`${base}/none`, ctx, { cwd }));
    assert.match(absMissing.message, /does not exist or is not a file/);

    // Lower-case `dockerfile` is taken when `Dockerfile` is missing (docker CLI).
    const lower = `${base}/lower`;
    await Deno.mkdir(lower);
    await Deno.writeTextFile(`${lower}/dockerfile`, "FROM lower\n");
    await using lctx = await prepareContext(lower, { cwd: lower });
    const l = await loadDockerfile(undefined, lctx, { cwd: lower });
    assert.deepEqual([l.text, l.name], ["FROM lower\n", "dockerfile"]);

    // A Dockerfile symlinked out of a local directory is followed (the user's own file)…
    const linked = `${base}/linked`;
    await Deno.mkdir(linked);
    await Deno.symlink(`${cwd}/Dockerfile`, `${linked}/Dockerfile`);
    await using kctx = await prepareContext(linked, { cwd: linked });
    assert.equal((await loadDockerfile(undefined, kctx, { cwd: linked })).text, "FROM cwd\n");
    // …but refused in a downloaded context.
    const { createTarStream } = await import("../../lib/tar/mod.ts");
    const tar = createTarStream([
      { header: { name: "Dockerfile", type: "symlink", linkname: `${cwd}/Dockerfile` } },
    ]);
    const err = await rejects(prepareContext("tar://stdin", { stdin: tar, cwd: base }));
    assert.match(
      err.message,
      /^Dockerfile "Dockerfile": "Dockerfile" leads outside the build context/,
    );
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("the ignore file: <Dockerfile>.dockerignore wins over .dockerignore", async () => {
  const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "ctx-ign-" }));
  try {
    await Deno.mkdir(`${base}/docker`);
    await Deno.writeTextFile(`${base}/.dockerignore`, "root-rule\n");
    await Deno.writeTextFile(`${base}/Dockerfile`, "FROM a\n");
    await Deno.writeTextFile(`${base}/docker/app.Dockerfile`, "FROM b\n");
    await Deno.writeTextFile(`${base}/docker/app.Dockerfile.dockerignore`, "app-rule\n!keep\n");
    await Deno.writeTextFile(`${base}/docker/lint.Dockerfile`, "FROM c\n");

    await using byDefault = await prepareContext(base, { cwd: base });
    assert.deepEqual(byDefault.ignore.patterns, ["root-rule"]);
    assert.equal(byDefault.ignoreFile, `${base}/.dockerignore`);

    await using app = await prepareContext(base, { dockerfile: "docker/app.Dockerfile", cwd: "/" });
    assert.deepEqual(app.ignore.patterns, ["app-rule", "!keep"]);
    const df = await loadDockerfile("docker/app.Dockerfile", app, { cwd: "/" });
    assert.equal(df.ignoreFile, `${base}/docker/app.Dockerfile.dockerignore`);

    await using lint = await prepareContext(base, {
      dockerfile: "docker/lint.Dockerfile",
      cwd: "/",
    });
    assert.deepEqual(lint.ignore.patterns, ["root-rule"]);

    // A Dockerfile outside the context with its own ignore file.
    const outside = await Deno.realPath(await Deno.makeTempDir({ prefix: "ctx-ign-out-" }));
    try {
      await Deno.writeTextFile(`${outside}/x.Dockerfile`, "FROM x\n");
      await Deno.writeTextFile(`${outside}/x.Dockerfile.dockerignore`, "outside-rule\n");
      await using o = await prepareContext(base, { dockerfile: `${outside}/x.Dockerfile` });
      assert.deepEqual(o.ignore.patterns, ["outside-rule"]);
    } finally {
      await Deno.remove(outside, { recursive: true });
    }

    // No ignore file at all.
    await Deno.remove(`${base}/.dockerignore`);
    await using none = await prepareContext(base, { cwd: base });
    assert.equal(none.ignore.isEmpty, true);
    assert.equal(none.ignoreFile, undefined);

    // A malformed ignore file fails with its path and line.
    await Deno.writeTextFile(`${base}/.dockerignore`, "ok\n\n[\n");
    const err = await rejects(prepareContext(base, { cwd: base }));
    assert.ok(err instanceof KanikoError);
    assert.equal(
      err.message,
      `${base}/.dockerignore:3: invalid pattern "[": syntax error in pattern`,
    );
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("extraction warnings go to the log", async () => {
  const { createTarStream } = await import("../../lib/tar/mod.ts");
  const tar = new Uint8Array(
    await new Response(createTarStream([
      { header: { name: "f", type: "file" }, body: enc.encode("x") },
      { header: { name: "p", type: "fifo" } },
    ])).arrayBuffer(),
  );
  const log = captureLog();
  try {
    await using ctx = await prepareContext("tar://stdin", {
      stdin: new Blob([tar]).stream(),
    });
    assert.equal(await Deno.readTextFile(`${ctx.root}/f`), "x");
  } finally {
    log.restore();
  }
  assert.ok(
    log.lines.some((l) =>
      /skipping device and FIFO entries of build context tar:\/\/stdin/.test(l)
    ),
  );
});

globalThis.addEventListener("unload", () => {
  if (archivesBase) Deno.removeSync(archivesBase, { recursive: true });
});
