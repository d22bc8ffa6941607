/**
 * Git contexts against a local `git daemon` (branch, tag, commit hashes, sub-directories,
 * Kaniko's #REF#COMMIT and --git branch=) and a local smart-HTTP server (`git http-backend`
 * behind hono) that wants credentials (GIT_USERNAME/GIT_PASSWORD, GIT_TOKEN, none, wrong ones).
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { prepareContext, resolveSources } from "../../lib/context/mod.ts";
import { captureLog, rejects } from "../_helpers.ts";

const decoder = new TextDecoder();

async function git(
  args: string[],
  cwd?: string,
  env: Record<string, string> = {},
): Promise<string> {
  const out = await new Deno.Command("git", {
    args,
    cwd,
    env: {
      GIT_AUTHOR_NAME: "t",
      GIT_AUTHOR_EMAIL: "t@example.com",
      GIT_COMMITTER_NAME: "t",
      GIT_COMMITTER_EMAIL: "t@example.com",
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`git ${args.join(" ")}: ${decoder.decode(out.stderr)}`);
  return decoder.decode(out.stdout).trim();
}

interface Repo {
  base: string;
  /** Directory served (holds repo.git). */
  srv: string;
  first: string;
  second: string;
  feature: string;
}

async function makeRepo(): Promise<Repo> {
  const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "ctx-git-" }));
  const work = `${base}/work`;
  const srv = `${base}/srv`;
  await Deno.mkdir(`${work}/sub`, { recursive: true });
  await Deno.mkdir(srv);
  await git(["init", "-q", "-b", "main", work]);
  const write = (name: string, text: string) => Deno.writeTextFile(`${work}/${name}`, text);
  await write("Dockerfile", "FROM one\n");
  await write("version", "v1\n");
  await write("sub/Dockerfile", "FROM sub\n");
  await write("sub/x", "x1\n");
  await git(["add", "-A"], work);
  await git(["commit", "-q", "-m", "one"], work);
  const first = await git(["rev-parse", "HEAD"], work);
  await git(["tag", "-a", "v1.0", "-m", "release"], work);
  await git(["checkout", "-q", "-b", "feature"], work);
  await write("version", "feature\n");
  await git(["commit", "-q", "-am", "feature"], work);
  const feature = await git(["rev-parse", "HEAD"], work);
  await git(["checkout", "-q", "main"], work);
  await write("version", "v2\n");
  await git(["commit", "-q", "-am", "two"], work);
  const second = await git(["rev-parse", "HEAD"], work);
  await git(["clone", "-q", "--bare", work, `${srv}/repo.git`]);
  return { base, srv, first, second, feature };
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`nothing listens on ${port}`);
}

Deno.test("git contexts served by git daemon", async (t) => {
  const repo = await makeRepo();
  const port = freePort();
  const daemon = new Deno.Command("git", {
    args: [
      "daemon",
      "--export-all",
      "--reuseaddr",
      "--informative-errors",
      `--base-path=${repo.srv}`,
      "--listen=127.0.0.1",
      `--port=${port}`,
      repo.srv,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const env = (name: string) => name === "GIT_PULL_METHOD" ? "git" : undefined;
  const url = `git://127.0.0.1:${port}/repo.git`;
  const workDir = `${repo.base}/kaniko`;
  const read = (root: string, name: string) => Deno.readTextFileSync(`${root}/${name}`);
  try {
    await waitForPort(port);

    await t.step("the default branch, .git kept as Kaniko keeps it", async () => {
      await using ctx = await prepareContext(url, { env, workDir });
      assert.equal(ctx.kind, "git");
      assert.equal(ctx.commit, repo.second);
      assert.equal(read(ctx.root, "version"), "v2\n");
      assert.ok(Deno.statSync(`${ctx.root}/.git`).isDirectory);
      assert.ok(ctx.root.startsWith(`${workDir}/context-`));
    });

    await t.step("a branch", async () => {
      await using ctx = await prepareContext(`${url}#feature`, { env, workDir });
      assert.equal(read(ctx.root, "version"), "feature\n");
      assert.equal(ctx.commit, repo.feature);
    });

    await t.step("a full ref (Kaniko's form)", async () => {
      await using ctx = await prepareContext(`${url}#refs/heads/feature`, { env });
      assert.equal(read(ctx.root, "version"), "feature\n");
    });

    await t.step("an annotated tag", async () => {
      await using ctx = await prepareContext(`${url}#v1.0`, { env });
      assert.equal(read(ctx.root, "version"), "v1\n");
      assert.equal(ctx.commit, repo.first);
    });

    await t.step("a commit hash: a branch tip, and a commit inside the history", async () => {
      await using tip = await prepareContext(`${url}#${repo.feature}`, { env });
      assert.equal(read(tip.root, "version"), "feature\n");
      await using old = await prepareContext(`${url}#${repo.first}`, { env });
      assert.equal(read(old.root, "version"), "v1\n");
      await using short = await prepareContext(`${url}#${repo.first.slice(0, 10)}`, { env });
      assert.equal(short.commit, repo.first);
    });

    await t.step("a sub-directory, with a ref and with the default branch", async () => {
      await using ctx = await prepareContext(`${url}#v1.0:sub`, { env });
      assert.equal(read(ctx.root, "x"), "x1\n");
      assert.deepEqual(await resolveSources(ctx, "*"), ["Dockerfile", "x"]);
      assert.deepEqual(ctx.ignore.patterns, []);
      await using dflt = await prepareContext(`${url}#:sub`, { env });
      assert.equal(read(dflt.root, "Dockerfile"), "FROM sub\n");
      await using both = await prepareContext(url, { env, subPath: "sub" });
      assert.equal(read(both.root, "x"), "x1\n");
    });

    await t.step("Kaniko's #REF#COMMIT", async () => {
      await using ctx = await prepareContext(`${url}#refs/heads/main#${repo.first}`, { env });
      assert.equal(ctx.commit, repo.first);
      assert.equal(read(ctx.root, "version"), "v1\n");
    });

    await t.step("--git branch= (a branch, then a tag), overriding the URL's ref", async () => {
      await using b = await prepareContext(`${url}#main`, {
        env,
        gitOptions: { branch: "feature" },
      });
      assert.equal(read(b.root, "version"), "feature\n");
      await using tag = await prepareContext(url, { env, gitOptions: { branch: "v1.0" } });
      assert.equal(read(tag.root, "version"), "v1\n");
      const err = await rejects(prepareContext(url, { env, gitOptions: { branch: "nope" } }));
      assert.match(err.message, /--git branch=nope names no branch or tag of the repository/);
    });

    await t.step("failures are one line naming the context, and leave nothing behind", async () => {
      const badRef = await rejects(prepareContext(`${url}#no-such-branch`, { env, workDir }));
      assert.match(
        badRef.message,
        new RegExp(`^git context ${url.replaceAll(".", "\\.")}#no-such-branch: git fetch failed`),
      );
      assert.match(badRef.hint ?? "", /"no-such-branch" is a branch, tag or full commit hash/);
      assert.ok(!badRef.message.includes("\n"));
      const badSha = await rejects(prepareContext(`${url}#${"0".repeat(40)}`, { env }));
      assert.match(badSha.message, /is no branch, tag or commit of the repository/);
      const badRepo = await rejects(prepareContext(`git://127.0.0.1:${port}/nope.git`, { env }));
      assert.match(badRepo.message, /^git context .*nope\.git: git fetch failed/);
      const badSub = await rejects(prepareContext(`${url}#main:nope`, { env }));
      assert.match(badSub.message, /"nope" is not a directory of the build context/);
      const badCommit = await rejects(prepareContext(`${url}#main#${"1".repeat(40)}`, { env }));
      assert.match(badCommit.message, /commit 1{40} is not in the repository/);
      assert.deepEqual([...Deno.readDirSync(workDir)], []);
    });

    await t.step(
      "git:// goes over https unless GIT_PULL_METHOD says otherwise (Kaniko)",
      async () => {
        const err = await rejects(prepareContext(url, { env: () => undefined }));
        assert.match(err.message, /git fetch failed/);
      },
    );
  } finally {
    daemon.kill("SIGTERM");
    await daemon.status;
    await Deno.remove(repo.base, { recursive: true });
  }
});

/** A smart-HTTP git server (`git http-backend` as CGI) that wants Basic credentials. */
function gitHttpServer(srv: string, accept: (auth: string | undefined) => boolean) {
  const requests: string[] = [];
  const app = new Hono();
  app.all("/*", async (c) => {
    const auth = c.req.header("authorization");
    requests.push(`${c.req.method} ${new URL(c.req.url).pathname} ${auth ?? "-"}`);
    if (!accept(auth)) {
      return new Response("authentication required\n", {
        status: 401,
        headers: { "www-authenticate": 'Basic realm="git"' },
      });
    }
    const url = new URL(c.req.url);
    const child = new Deno.Command("git", {
      args: ["http-backend"],
      env: {
        GIT_PROJECT_ROOT: srv,
        GIT_HTTP_EXPORT_ALL: "1",
        PATH_INFO: url.pathname,
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: c.req.method,
        CONTENT_TYPE: c.req.header("content-type") ?? "",
        HTTP_CONTENT_ENCODING: c.req.header("content-encoding") ?? "",
        GIT_PROTOCOL: c.req.header("git-protocol") ?? "",
        REMOTE_USER: "builder",
        REMOTE_ADDR: "127.0.0.1",
      },
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const body = c.req.raw.body;
    if (body) await body.pipeTo(child.stdin);
    else await child.stdin.close();
    const out = await child.output();
    const raw = out.stdout;
    let split = 0;
    for (; split + 3 < raw.length; split++) {
      if (
        raw[split] === 13 && raw[split + 1] === 10 && raw[split + 2] === 13 && raw[split + 3] === 10
      ) break;
    }
    const headers = new Headers();
    let status = 200;
    for (const line of decoder.decode(raw.slice(0, split)).split("\r\n")) {
      const i = line.indexOf(":");
      if (i < 0) continue;
      const [k, v] = [line.slice(0, i).trim(), line.slice(i + 1).trim()];
      if (k.toLowerCase() === "status") status = parseInt(v, 10);
      else headers.set(k, v);
    }
    return new Response(raw.slice(split + 4), { status, headers });
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
  return { server, requests };
}

Deno.test("git over smart HTTP with credentials from the environment, never printed", async (t) => {
  const repo = await makeRepo();
  const user = "builder";
  const password = "pa55-w0rd-xyz";
  const token = "tok-0123456789abcdef";
  const accepted = new Set([
    "Basic " + btoa(`${user}:${password}`),
    "Basic " + btoa(`${token}:`),
  ]);
  const { server, requests } = gitHttpServer(
    repo.srv,
    (auth) => auth !== undefined && accepted.has(auth),
  );
  const port = server.addr.port;
  const url = `git://127.0.0.1:${port}/repo.git`;
  const envOf = (vars: Record<string, string>) => (name: string) =>
    name === "GIT_PULL_METHOD" ? "http" : vars[name];
  const log = captureLog();
  try {
    await t.step("GIT_USERNAME and GIT_PASSWORD", async () => {
      await using ctx = await prepareContext(`${url}#v1.0`, {
        env: envOf({ GIT_USERNAME: user, GIT_PASSWORD: password }),
      });
      assert.equal(Deno.readTextFileSync(`${ctx.root}/version`), "v1\n");
      const config = Deno.readTextFileSync(`${ctx.root}/.git/config`);
      assert.ok(!config.includes(password));
      assert.match(config, new RegExp(`url = http://127\\.0\\.0\\.1:${port}/repo\\.git`));
    });

    await t.step("GIT_TOKEN as the user name (Kaniko)", async () => {
      await using ctx = await prepareContext(url, {
        env: envOf({ GIT_TOKEN: token, GIT_USERNAME: "ignored", GIT_PASSWORD: "ignored" }),
      });
      assert.equal(ctx.commit, repo.second);
    });

    await t.step("https://user:password@ in the URL (as the last resort)", async () => {
      const spec = `http://${user}:${password}@127.0.0.1:${port}/repo.git#feature`;
      await using ctx = await prepareContext(spec, { env: () => undefined });
      assert.equal(ctx.description, `http://${user}:***@127.0.0.1:${port}/repo.git#feature`);
      assert.equal(Deno.readTextFileSync(`${ctx.root}/version`), "feature\n");
      assert.ok(!Deno.readTextFileSync(`${ctx.root}/.git/config`).includes(password));
    });

    await t.step("wrong or missing credentials: a clear error without the secret", async () => {
      const wrong = await rejects(prepareContext(url, {
        env: envOf({ GIT_USERNAME: user, GIT_PASSWORD: "wrong-secret-value" }),
      }));
      assert.match(
        wrong.message,
        /^git context git:\/\/127\.0\.0\.1:\d+\/repo\.git: git fetch failed/,
      );
      assert.match(wrong.hint ?? "", /GIT_TOKEN, or GIT_USERNAME and GIT_PASSWORD/);
      assert.ok(!wrong.message.includes("wrong-secret-value"));
      const none = await rejects(prepareContext(url, { env: envOf({}) }));
      assert.match(none.hint ?? "", /GIT_TOKEN/);
    });
  } finally {
    log.restore();
    await server.shutdown();
    await Deno.remove(repo.base, { recursive: true });
  }
  const logged = log.lines.join("\n");
  assert.ok(!logged.includes(password) && !logged.includes(token));
  assert.ok(requests.some((r) => r.includes(" Basic ")), "credentials were sent");
});
