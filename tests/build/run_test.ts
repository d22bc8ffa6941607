/**
 * lib/build/run.ts in chroot isolation, on a tiny root made of the host's busybox: shell and exec
 * forms, env, workdir, users and groups, exit codes and signals, background processes killed at
 * the end of the step, /proc /dev /sys /etc/resolv.conf /etc/hosts inside and nothing left on the
 * host or in the root afterwards (mounts, mount points, directory times), RUN mounts (secret,
 * cache, tmpfs, bind), escapes that stay inside the root, abort. Needs root (skipped otherwise).
 */
import assert from "node:assert/strict";
import { posix } from "node:path";
import { KanikoError } from "../../lib/errors.ts";
import { lstatNs } from "../../lib/fs/meta.ts";
import { findExecutable, hostPath } from "../../lib/build/isolation.ts";
import { pumpLines, runStep, type RunStepSpec, type StepMount } from "../../lib/build/run.ts";
import { resolveInRoot } from "../../lib/build/mounts.ts";
import { resolveUser } from "../../lib/build/users.ts";

const isRoot = Deno.uid() === 0;
const ignore = !isRoot || Deno.build.os !== "linux";

const PASSWD = "root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000:U:/home/u:/bin/sh\n";
const GROUP = "root:x:0:\nu:x:1000:\ng2:x:2000:u\ng3:x:2001:u,other\n";

interface TestRoot extends AsyncDisposable {
  /** Parent temp dir (holds root/, ctx/, cache/). */
  dir: string;
  root: string;
}

/** A root with the host's busybox and its applets as symlinks, /etc/passwd and /etc/group. */
async function busyboxRoot(): Promise<TestRoot> {
  const busybox = findExecutable("busybox", hostPath());
  if (!busybox) throw new Error("the host has no busybox");
  const dir = await Deno.makeTempDir({ prefix: "kaniko-run-test-" });
  const root = `${dir}/root`;
  await Deno.mkdir(`${root}/bin`, { recursive: true });
  await Deno.mkdir(`${root}/etc`);
  await Deno.mkdir(`${root}/tmp`, { mode: 0o1777 });
  await Deno.copyFile(busybox, `${root}/bin/busybox`);
  await Deno.chmod(`${root}/bin/busybox`, 0o755);
  const list = await new Deno.Command(busybox, { args: ["--list"] }).output();
  for (const name of new TextDecoder().decode(list.stdout).split("\n")) {
    if (name && name !== "busybox") await Deno.symlink("/bin/busybox", `${root}/bin/${name}`);
  }
  // A dynamically linked busybox needs its libraries in the root too.
  const ldd = await new Deno.Command("ldd", { args: [busybox], stderr: "null" }).output()
    .catch(() => undefined);
  for (const m of new TextDecoder().decode(ldd?.stdout ?? new Uint8Array()).matchAll(/(\/\S+)/g)) {
    const lib = m[1];
    await Deno.mkdir(`${root}${posix.dirname(lib)}`, { recursive: true });
    await Deno.copyFile(await Deno.realPath(lib), `${root}${lib}`).catch(() => {});
  }
  await Deno.writeTextFile(`${root}/etc/passwd`, PASSWD);
  await Deno.writeTextFile(`${root}/etc/group`, GROUP);
  return {
    dir,
    root,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true });
    },
  };
}

interface Output {
  code: number;
  out: string[];
  err: string[];
}

/** Runs a step in chroot isolation as root in `/`, collecting its output. */
async function run(
  root: string,
  argv: string[],
  extra: Partial<RunStepSpec> = {},
): Promise<Output> {
  const out: string[] = [];
  const err: string[] = [];
  const { code } = await runStep({
    root,
    argv,
    env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
    user: { uid: 0, gid: 0, groups: [] },
    workdir: "/",
    isolation: "chroot",
    stdout: (l) => out.push(l),
    stderr: (l) => err.push(l),
    ...extra,
  });
  return { code, out, err };
}

const sh = (script: string) => ["/bin/sh", "-c", script];

/** Host processes whose command line is exactly `argv`. */
function hostProcesses(argv: string[]): number[] {
  const want = argv.join("\0") + "\0";
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${entry.name}/cmdline`) === want) pids.push(+entry.name);
    } catch {
      // gone
    }
  }
  return pids;
}

/** Whether any host process has `text` in its command line. */
function inAnyCommandLine(text: string): boolean {
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).includes(text)) return true;
    } catch {
      // gone
    }
  }
  return false;
}

function hostMountsUnder(path: string): string[] {
  return Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
    .filter((l) => l.split(" ")[4]?.startsWith(path));
}

async function waitFor(path: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      Deno.statSync(path);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  throw new Error(`${path} did not appear`);
}

/** Names and nanosecond mtimes of the root's top-level entries (and /etc's). */
function treeTimes(root: string): string[] {
  const rows: string[] = [];
  for (const dir of ["", "etc"]) {
    const base = posix.join(root, dir);
    rows.push(`${dir || "/"} ${lstatNs(base)!.mtimeNs}`);
    for (const e of [...Deno.readDirSync(base)].map((e) => e.name).sort()) {
      rows.push(`${dir}/${e} ${lstatNs(posix.join(base, e))!.mtimeNs}`);
    }
  }
  return rows;
}

const unique = () => 10_000 + Math.floor(Math.random() * 80_000);

Deno.test({
  name: "RUN shell form and exec form; env reaches the command; output streamed by line",
  ignore,
  async fn() {
    await using t = await busyboxRoot();
    const shell = await run(
      t.root,
      sh('echo "hello $WHO"; printf "a\\r\\nb\\nno-newline"; echo oops >&2'),
      {
        env: ["PATH=/bin", "WHO=world", "EMPTY="],
      },
    );
    assert.equal(shell.code, 0);
    assert.deepEqual(shell.out, ["hello world", "a", "b", "no-newline"]);
    assert.deepEqual(shell.err, ["oops"]);
    // Exec form: argv[0] looked up in the command's PATH inside the root, no shell involved.
    const exec = await run(t.root, ["echo", "a  b", "$WHO"], { env: ["PATH=/bin", "WHO=x"] });
    assert.deepEqual(exec.out, ["a  b $WHO"]);
    const env = await run(t.root, ["env"], { env: ["PATH=/bin", "A=1", "B=two words"] });
    assert.deepEqual(env.out.sort(), ["A=1", "B=two words", "PATH=/bin"]);
    // Variables the helper shell manages keep the values the step gave them.
    const kept = await run(t.root, ["env"], { env: ["PATH=/bin", "PWD=/somewhere", "SHLVL=7"] });
    assert.deepEqual(kept.out.sort(), ["PATH=/bin", "PWD=/somewhere", "SHLVL=7"]);
    const missing = await run(t.root, ["no-such-program"]);
    assert.equal(missing.code, 127);
  },
});

Deno.test({
  name: "RUN workdir: used as cwd, created when missing (and kept), HOME from the user",
  ignore,
  async fn() {
    await using t = await busyboxRoot();
    const r = await run(t.root, sh("pwd; echo $HOME"), {
      workdir: "/app/src",
      user: { uid: 0, gid: 0, groups: [], home: "/root" },
    });
    assert.deepEqual(r.out, ["/app/src", "/root"]);
    assert.ok(Deno.statSync(`${t.root}/app/src`).isDirectory);
    // An explicit HOME wins.
    const h = await run(t.root, sh("echo $HOME"), {
      env: ["HOME=/elsewhere"],
      user: { uid: 0, gid: 0, groups: [], home: "/root" },
    });
    assert.deepEqual(h.out, ["/elsewhere"]);
  },
});

Deno.test({
  name: "RUN as a user by name and by uid: uid, gid and supplementary groups from the image",
  ignore,
  async fn() {
    await using t = await busyboxRoot();
    const byName = await run(t.root, sh("id; echo $HOME"), { user: resolveUser(t.root, "u") });
    assert.deepEqual(byName.out, ["uid=1000(u) gid=1000(u) groups=2000(g2),2001(g3)", "/home/u"]);
    const byUid = await run(t.root, sh("id; grep ^Groups /proc/self/status"), {
      user: resolveUser(t.root, "4242"),
    });
    assert.equal(byUid.out[0], "uid=4242 gid=0(root)");
    assert.match(byUid.out[1], /^Groups:\s*$/);
    const withGroup = await run(t.root, ["id"], { user: resolveUser(t.root, "u:g3") });
    assert.deepEqual(withGroup.out, ["uid=1000(u) gid=2001(g3)"]);
    // A non-root user has no capabilities: it cannot write where root's files are.
    const denied = await run(t.root, sh("touch /etc/x"), { user: resolveUser(t.root, "u") });
    assert.notEqual(denied.code, 0);
  },
});

Deno.test({
  name: "RUN exit codes pass through; a command killed by a signal gives 128+signal",
  ignore,
  async fn() {
    await using t = await busyboxRoot();
    assert.equal((await run(t.root, sh("exit 42"))).code, 42);
    assert.equal((await run(t.root, ["false"])).code, 1);
    assert.equal((await run(t.root, sh("kill -TERM $$"))).code, 143);
    assert.equal((await run(t.root, sh("kill -KILL $$"))).code, 137);
  },
});

Deno.test({
  name: "RUN background processes (even setsid daemons) are dead when the step ends",
  ignore,
  async fn() {
    await using t = await busyboxRoot();
    const a = unique();
    const b = a + 1;
    const r = await run(
      t.root,
      sh(
        `sleep ${a} & (setsid sleep ${b} &); sleep 0.2; ps -o args | grep -c '^sleep ${a}\\|^sleep ${b}'`,
      ),
    );
    assert.equal(r.code, 0);
    assert.deepEqual(r.out, ["2"], "both sleeps ran during the step");
    assert.deepEqual(hostProcesses(["sleep", `${a}`]), []);
    assert.deepEqual(hostProcesses(["sleep", `${b}`]), []);
  },
});

Deno.test({
  name:
    "RUN sees its own /proc (PID namespace), /dev nodes, read-only /sys; no mount reaches the host",
  ignore,
  async fn() {
    await using t = await busyboxRoot();
    const started = `${t.root}/tmp/started`;
    const step = run(
      t.root,
      sh(
        "grep -c ^Pid: /proc/self/status; ps -o pid | tail -n +2 | wc -l; " +
          "echo x > /dev/null && head -c 5 /dev/urandom | wc -c; ls -l /dev/zero | cut -c1; " +
          "touch /sys/x 2>/dev/null || echo sys-ro; echo 1 > /proc/sys/vm/swappiness 2>/dev/null || echo procsys-ro; " +
          "mount -t tmpfs none /mnt 2>/dev/null || echo no-mount; touch /tmp/started; sleep 1",
      ),
    );
    await waitFor(started);
    assert.deepEqual(hostMountsUnder(t.root), [], "the host sees none of the step's mounts");
    const r = await step;
    assert.equal(r.code, 0);
    // Few processes: the sandbox's PID 1, the shell, ps, tail, wc.
    assert.ok(+r.out[1] <= 6, `processes seen: ${r.out[1]}`);
    assert.deepEqual(r.out.slice(2), ["5", "c", "sys-ro", "procsys-ro", "no-mount"]);
    assert.deepEqual(hostMountsUnder(t.root), []);
    for (const name of ["proc", "dev", "sys", "run"]) {
      assert.equal(lstatNs(`${t.root}/${name}`), undefined, `/${name} stub removed`);
    }
  },
});

Deno.test({
  name: "RUN mount points leave no trace: same entries and directory times before and after",
  ignore,
  async fn() {
    await using t = await busyboxRoot();
    const before = treeTimes(t.root);
    await new Promise((r) => setTimeout(r, 20));
    const r = await run(t.root, ["true"], {
      mounts: [{ type: "tmpfs", target: "/var/cache/x", readOnly: false }],
      secrets: new Map([["s", { data: new TextEncoder().encode("v") }]]),
    });
    assert.equal(r.code, 0);
    assert.deepEqual(treeTimes(t.root), before);
  },
});

Deno.test({
  name: "RUN /etc/resolv.conf and /etc/hosts: provided during the step, image's files unchanged",
  ignore,
  async fn() {
    await using t = await busyboxRoot();
    let hostResolv = "";
    try {
      hostResolv = Deno.readTextFileSync("/etc/resolv.conf");
    } catch {
      // none
    }
    // The image has no resolv.conf: present during the step, absent afterwards.
    const r = await run(t.root, sh("cat /etc/resolv.conf; echo ---; cat /etc/hosts; hostname"));
    const text = r.out.join("\n");
    assert.equal(text.split("\n---\n")[0].trim(), hostResolv.trim());
    assert.match(text, /127\.0\.0\.1\tlocalhost buildkitsandbox/);
    assert.equal(r.out.at(-1), "buildkitsandbox");
    assert.equal(lstatNs(`${t.root}/etc/resolv.conf`), undefined);
    assert.equal(lstatNs(`${t.root}/etc/hosts`), undefined);
    // The image has its own: overridden during the step, and writes go to a private copy.
    Deno.writeTextFileSync(`${t.root}/etc/resolv.conf`, "nameserver 192.0.2.1\n");
    const w = await run(t.root, sh("echo hacked >> /etc/resolv.conf; cat /etc/resolv.conf"));
    assert.equal(w.out.at(-1), "hacked");
    assert.equal(Deno.readTextFileSync(`${t.root}/etc/resolv.conf`), "nameserver 192.0.2.1\n");
    let hostAfter = "";
    try {
      hostAfter = Deno.readTextFileSync("/etc/resolv.conf");
    } catch {
      // none
    }
    assert.equal(hostAfter, hostResolv);
  },
});

Deno.test({
  name:
    "RUN --mount=type=secret: 0400 file at /run/secrets/<id>, env form, never on a command line",
  ignore,
  async fn() {
    await using t = await busyboxRoot();
    const value = `s3cr3t-${crypto.randomUUID()}`;
    const secrets = new Map([["tok", { data: new TextEncoder().encode(value) }]]);
    const started = `${t.root}/tmp/started`;
    const step = run(
      t.root,
      sh(
        'cat /run/secrets/tok; echo; stat -c "%a %u" /run/secrets/tok; echo "$TOKEN"; touch /tmp/started; sleep 1',
      ),
      {
        mounts: [
          { type: "secret", id: "tok", readOnly: true },
          { type: "secret", id: "tok", env: "TOKEN", readOnly: true },
        ],
        secrets,
      },
    );
    await waitFor(started);
    assert.equal(inAnyCommandLine(value), false, "the secret is on no process's command line");
    const r = await step;
    assert.deepEqual(r.out, [value, "400 0", value]);
    assert.equal(lstatNs(`${t.root}/run`), undefined, "no /run/secrets left in the root");
    // Custom target, owner and mode; a user can then read it.
    const u = await run(t.root, sh("cat /home/u/.tok; echo; stat -c '%a %u' /home/u/.tok"), {
      mounts: [{
        type: "secret",
        id: "tok",
        target: "/home/u/.tok",
        uid: 1000,
        mode: 0o440,
        readOnly: true,
      }],
      secrets,
      user: resolveUser(t.root, "u"),
    });
    assert.deepEqual(u.out, [value, "440 1000"]);
    assert.equal(lstatNs(`${t.root}/home`), undefined);
    // Optional and missing: not mounted. Required and missing: an error.
    const opt = await run(t.root, sh("test -e /run/secrets/nope || echo absent"), {
      mounts: [{ type: "secret", id: "nope", readOnly: true }],
    });
    assert.deepEqual(opt.out, ["absent"]);
    await assert.rejects(
      run(t.root, ["true"], {
        mounts: [{ type: "secret", id: "nope", required: true, readOnly: true }],
      }),
      (e) => e instanceof KanikoError && /secret nope: not found/.test(e.message),
    );
  },
});

Deno.test({
  name: "RUN --mount=type=cache persists between steps, keyed by id, outside the root",
  ignore,
  async fn() {
    await using t = await busyboxRoot();
    const cacheDir = `${t.dir}/cache`;
    const cache: StepMount = { type: "cache", target: "/root/.cache", readOnly: false };
    const first = await run(
      t.root,
      sh("echo v1 > /root/.cache/f; ls -ld /root/.cache | cut -c1-10"),
      {
        mounts: [cache],
        cacheDir,
      },
    );
    assert.equal(first.code, 0);
    assert.deepEqual(first.out, ["drwxr-xr-x"]);
    assert.equal(lstatNs(`${t.root}/root`), undefined, "the cache is not in the root");
    const second = await run(t.root, ["cat", "/root/.cache/f"], { mounts: [cache], cacheDir });
    assert.deepEqual(second.out, ["v1"]);
    // Another id is another cache; uid and mode apply when it is created.
    const other = await run(t.root, sh("ls /root/.cache; stat -c '%a %u' /root/.cache"), {
      mounts: [{ ...cache, id: "other", uid: 1000, mode: 0o700 }],
      cacheDir,
    });
    assert.deepEqual(other.out, ["700 1000"]);
    // Read-only cache.
    const ro = await run(t.root, sh("echo x > /root/.cache/g"), {
      mounts: [{ ...cache, readOnly: true }],
      cacheDir,
    });
    assert.notEqual(ro.code, 0);
  },
});

Deno.test({
  name: "RUN --mount=type=tmpfs: a fresh tmpfs with its size, gone afterwards",
  ignore,
  async fn() {
    await using t = await busyboxRoot();
    const r = await run(
      t.root,
      sh("echo x > /scratch/f && cat /scratch/f; grep ' /scratch ' /proc/mounts"),
      {
        mounts: [{ type: "tmpfs", target: "/scratch", size: "1m", readOnly: false }],
      },
    );
    assert.equal(r.code, 0);
    assert.equal(r.out[0], "x");
    assert.match(r.out[1], /^tmpfs \/scratch tmpfs .*size=1024k/);
    assert.equal(lstatNs(`${t.root}/scratch`), undefined);
  },
});

Deno.test({
  name: "RUN --mount=type=bind: read-only by default; rw writes are discarded",
  ignore,
  async fn() {
    await using t = await busyboxRoot();
    const ctx = `${t.dir}/ctx`;
    Deno.mkdirSync(ctx);
    Deno.writeTextFileSync(`${ctx}/hello`, "from context\n");
    const bind: StepMount = { type: "bind", target: "/src", readOnly: true, sourcePath: ctx };
    const ro = await run(
      t.root,
      sh("cat /src/hello; touch /src/new 2>/dev/null || echo read-only"),
      {
        mounts: [bind],
      },
    );
    assert.deepEqual(ro.out, ["from context", "read-only"]);
    const rw = await run(t.root, sh("echo changed > /src/hello; touch /src/new; cat /src/hello"), {
      mounts: [{ ...bind, readOnly: false }],
    });
    assert.deepEqual(rw.out, ["changed"]);
    assert.equal(Deno.readTextFileSync(`${ctx}/hello`), "from context\n");
    assert.deepEqual([...Deno.readDirSync(ctx)].map((e) => e.name), ["hello"]);
    // A file source, and a cache mounted inside the bind (nested targets).
    const file = await run(t.root, sh("cat /etc/motd; ls /src/sub"), {
      mounts: [
        { type: "bind", target: "/etc/motd", readOnly: true, sourcePath: `${ctx}/hello` },
        { ...bind, readOnly: false },
        { type: "tmpfs", target: "/src/sub/tmp", readOnly: false },
      ],
    });
    assert.deepEqual(file.out, ["from context", "tmp"]);
    assert.deepEqual([...Deno.readDirSync(ctx)].map((e) => e.name), ["hello"]);
    assert.equal(lstatNs(`${t.root}/src`), undefined);
    assert.equal(lstatNs(`${t.root}/etc/motd`), undefined);
    // A read-only bind cannot hold a new mount point.
    await assert.rejects(
      run(t.root, ["true"], {
        mounts: [bind, { type: "tmpfs", target: "/src/missing", readOnly: false }],
      }),
      (e) =>
        e instanceof KanikoError &&
        /does not exist in the read-only mount at \/src/.test(e.message),
    );
  },
});

Deno.test({
  name: "RUN rw bind: odd characters in paths; the copy fallback never enters the sandbox's mounts",
  ignore,
  async fn() {
    await using t = await busyboxRoot();
    // A context with a space, a comma and non-ASCII in its name, holding the root itself.
    const ctx = `${t.dir}/ctx dir,é`;
    Deno.mkdirSync(ctx);
    const root = `${ctx}/root`;
    Deno.renameSync(t.root, root);
    Deno.writeTextFileSync(`${ctx}/file`, "data\n");
    const script = "cat /ctx/file; ls /ctx/root/proc | wc -l; echo new > /ctx/file; cat /ctx/file";
    const mounts: StepMount[] = [{
      type: "bind",
      target: "/ctx",
      readOnly: false,
      sourcePath: ctx,
    }];
    // Overlay, then (a scratch path overlayfs options cannot hold) a copy.
    for (const tmpDir of [undefined, `${t.dir}/tmp,dir`]) {
      const r = await run(root, sh(script), { mounts, tmpDir });
      assert.equal(r.code, 0, r.err.join("\n"));
      assert.deepEqual(r.out, ["data", "0", "new"]);
    }
    assert.equal(Deno.readTextFileSync(`${ctx}/file`), "data\n");
    assert.equal(lstatNs(`${root}/proc`), undefined);
    assert.deepEqual([...Deno.readDirSync(`${t.dir}/tmp,dir`)], []);
    Deno.renameSync(root, t.root);
  },
});

Deno.test({
  name:
    "RUN: writes to /../../x, mount targets and workdirs that climb or link out stay inside the root",
  ignore,
  async fn() {
    await using t = await busyboxRoot();
    const n = unique();
    // The image links /esc to the host's /tmp (as if); inside the root it means the root's /tmp.
    Deno.symlinkSync("/../../../../tmp", `${t.root}/esc`);
    const r = await run(
      t.root,
      sh(
        `echo x > /../../escape-${n}; cd ../../../..; pwd; echo y > ../../escape2-${n}; ls /esc/stub-${n}`,
      ),
      {
        workdir: `/../../wd-${n}`,
        mounts: [
          { type: "tmpfs", target: `/../../../mnt-${n}`, readOnly: false },
          { type: "tmpfs", target: `/esc/stub-${n}`, readOnly: false },
        ],
      },
    );
    assert.equal(r.code, 0, r.err.join("\n"));
    assert.equal(r.out[0], "/");
    for (const name of [`escape-${n}`, `escape2-${n}`, `wd-${n}`, `mnt-${n}`, `tmp/stub-${n}`]) {
      assert.equal(lstatNs(`/${name}`), undefined, `host /${name} untouched`);
    }
    assert.ok(lstatNs(`${t.root}/escape-${n}`));
    assert.ok(lstatNs(`${t.root}/escape2-${n}`));
    assert.ok(lstatNs(`${t.root}/wd-${n}`));
    assert.equal(lstatNs(`${t.root}/mnt-${n}`), undefined, "stub removed");
    assert.equal(lstatNs(`${t.root}/tmp/stub-${n}`), undefined, "stub removed");
    assert.equal(resolveInRoot(t.root, `/esc/../../x`), `${t.root}/x`);
    assert.equal(resolveInRoot(t.root, `/esc/y`), `${t.root}/tmp/y`);
  },
});

Deno.test({
  name: "RUN --network=none: only a loopback interface",
  ignore,
  async fn() {
    await using t = await busyboxRoot();
    const r = await run(t.root, ["ls", "/sys/class/net"], { network: "none" });
    assert.deepEqual(r.out, ["lo"]);
  },
});

Deno.test({
  name: "RUN abort: the step and everything it started are killed; runStep rejects",
  ignore,
  async fn() {
    await using t = await busyboxRoot();
    const n = unique();
    const ac = new AbortController();
    const step = run(t.root, sh(`sleep ${n} & touch /tmp/started; sleep ${n + 1}`), {
      signal: ac.signal,
    });
    await waitFor(`${t.root}/tmp/started`);
    ac.abort(new Error("stop"));
    await assert.rejects(step, /stop/);
    assert.deepEqual(hostProcesses(["sleep", `${n}`]), []);
    assert.deepEqual(hostProcesses(["sleep", `${n + 1}`]), []);
    assert.deepEqual(hostMountsUnder(t.root), []);
  },
});

Deno.test({
  name: "RUN refusals: ssh mounts, chroot in /, missing bind sources",
  ignore,
  async fn() {
    await using t = await busyboxRoot();
    await assert.rejects(
      run(t.root, ["true"], { mounts: [{ type: "ssh", required: true, readOnly: true }] }),
      (e) => e instanceof KanikoError && /SSH agent forwarding is not supported/.test(e.message),
    );
    const optional = await run(t.root, ["true"], { mounts: [{ type: "ssh", readOnly: true }] });
    assert.equal(optional.code, 0);
    await assert.rejects(run("/", ["true"]), /needs a private root/);
    await assert.rejects(
      run(t.root, ["true"], {
        mounts: [{
          type: "bind",
          target: "/x",
          source: "nope",
          readOnly: true,
          sourcePath: `${t.dir}/nope`,
        }],
      }),
      /source nope does not exist/,
    );
    assert.equal(lstatNs(`${t.root}/x`), undefined);
  },
});

Deno.test("pumpLines: splits on LF and CRLF, keeps the last partial line, splits huge lines", async () => {
  const enc = new TextEncoder();
  const chunks = ["a\r", "\nb", "c\n", "x".repeat(70_000), "\nend"];
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (const ch of chunks) c.enqueue(enc.encode(ch));
      c.close();
    },
  });
  const lines: string[] = [];
  await pumpLines(stream, (l) => lines.push(l));
  assert.deepEqual(lines.map((l) => l.length > 100 ? `x*${l.length}` : l), [
    "a",
    "bc",
    `x*${64 * 1024}`,
    `x*${70_000 - 64 * 1024}`,
    "end",
  ]);
});
