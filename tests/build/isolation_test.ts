/**
 * lib/build/isolation.ts: container detection (Kaniko's `GetContainerRuntime` hints), the default
 * isolation, `checkIsolation` (none refused outside a container unless --force; chroot's
 * prerequisites), the sandbox script's syntax; and RUN in `none` isolation (Kaniko's model: the
 * command runs in `/`), exercised with harmless commands only.
 */
import assert from "node:assert/strict";
import { KanikoError } from "../../lib/errors.ts";
import {
  checkIsolation,
  defaultIsolation,
  detectContainer,
  type HostProbe,
  hostTools,
  SANDBOX_SCRIPT,
} from "../../lib/build/isolation.ts";
import { runStep, type RunStepSpec } from "../../lib/build/run.ts";

/** A host made of the given files and variables. */
function fakeHost(files: Record<string, string> = {}, env: Record<string, string> = {}): HostProbe {
  return {
    exists: (p) => p in files,
    read: (p) => files[p],
    env: (n) => env[n],
  };
}

const PLAIN_CGROUP = "0::/\n1:cpu:/\n";

Deno.test("detectContainer: cgroup names, env, marker files; nothing on a plain host", () => {
  assert.equal(detectContainer(fakeHost({ "/proc/self/cgroup": PLAIN_CGROUP })), undefined);
  assert.equal(
    detectContainer(fakeHost({ "/proc/self/cgroup": "0::/system.slice/docker-0123abcd.scope\n" })),
    "docker",
  );
  assert.equal(
    detectContainer(fakeHost({ "/proc/self/cgroup": "0::/kubepods/besteffort/pod1/abc\n" })),
    "kubernetes",
  );
  assert.equal(detectContainer(fakeHost({}, { container: "podman" })), "podman");
  assert.equal(detectContainer(fakeHost({ "/run/systemd/container": "lxc\n" })), "lxc");
  assert.equal(detectContainer(fakeHost({ "/.dockerenv": "" })), "docker");
  assert.equal(detectContainer(fakeHost({ "/run/.containerenv": "" })), "podman");
  assert.equal(
    detectContainer(fakeHost({ "/var/run/secrets/kubernetes.io/serviceaccount": "" })),
    "kubernetes",
  );
  assert.equal(detectContainer(fakeHost({ "/proc/vz": "" })), "openvz");
  assert.equal(detectContainer(fakeHost({ "/proc/vz": "", "/proc/bc": "" })), undefined);
  assert.equal(detectContainer(fakeHost({ "/__runsc_containers__": "" })), "gvisor");
});

Deno.test("defaultIsolation: none only in the executor's container, chroot elsewhere", () => {
  assert.equal(
    defaultIsolation(fakeHost({ "/.dockerenv": "", "/kaniko/executor": "" })),
    "none",
  );
  assert.equal(defaultIsolation(fakeHost({ "/.dockerenv": "" })), "chroot", "a dev container");
  assert.equal(defaultIsolation(fakeHost({ "/kaniko/executor": "" })), "chroot", "no container");
  assert.equal(defaultIsolation(fakeHost({ "/proc/self/cgroup": PLAIN_CGROUP })), "chroot");
});

Deno.test("checkIsolation: none is refused outside a container unless --force", () => {
  const host = fakeHost({ "/proc/self/cgroup": PLAIN_CGROUP });
  assert.throws(
    () => checkIsolation({ isolation: "none", force: false }, host),
    (e) =>
      e instanceof KanikoError &&
      e.message ===
        "kaniko should only be run inside of a container, run with the --force flag if you are sure you want to continue",
  );
  checkIsolation({ isolation: "none", force: true }, host);
  checkIsolation({ isolation: "none", force: false }, fakeHost({ "/.dockerenv": "" }));
});

Deno.test({
  name: "checkIsolation: chroot works here (root, util-linux, namespaces)",
  ignore: Deno.uid() !== 0,
  fn() {
    checkIsolation({ isolation: "chroot", force: false });
  },
});

Deno.test("the sandbox script is valid POSIX sh", async () => {
  const out = await new Deno.Command(hostTools().sh, { args: ["-n", "-c", SANDBOX_SCRIPT] })
    .output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
});

/** Runs a harmless step in none isolation (root `/`), after the --force check. */
async function runNone(argv: string[], extra: Partial<RunStepSpec> = {}) {
  checkIsolation(
    { isolation: "none", force: true },
    fakeHost({ "/proc/self/cgroup": PLAIN_CGROUP }),
  );
  const out: string[] = [];
  const err: string[] = [];
  const { code } = await runStep({
    root: "/",
    argv,
    env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hi"],
    user: { uid: 0, gid: 0, groups: [] },
    workdir: "/",
    isolation: "none",
    stdout: (l) => out.push(l),
    stderr: (l) => err.push(l),
    ...extra,
  });
  return { code, out, err };
}

const noneIgnore = Deno.uid() !== 0 || Deno.build.os !== "linux";

Deno.test({
  name: "RUN isolation none (--force): runs in /, env, exit codes, signals, exec lookup",
  ignore: noneIgnore,
  async fn() {
    const r = await runNone(["/bin/sh", "-c", 'echo "$GREETING"; pwd; echo e >&2']);
    assert.deepEqual([r.code, r.out, r.err], [0, ["hi", "/"], ["e"]]);
    assert.equal((await runNone(["/bin/sh", "-c", "exit 7"])).code, 7);
    assert.equal((await runNone(["/bin/sh", "-c", "kill -TERM $$"])).code, 143);
    assert.deepEqual((await runNone(["echo", "exec", "form"])).out, ["exec form"]);
    const missing = await runNone(["no-such-program-here"]);
    assert.equal(missing.code, 127);
    assert.match(missing.err[0], /executable file not found in \$PATH/);
    await assert.rejects(runNone(["true"], { root: "/tmp" }), /runs in \//);
  },
});

Deno.test({
  name: "RUN isolation none: another uid and groups through setpriv; background processes killed",
  ignore: noneIgnore,
  async fn() {
    const r = await runNone(["/bin/sh", "-c", "id -u; id -g; id -G"], {
      user: { uid: 65534, gid: 65534, groups: [65533] },
    });
    assert.deepEqual(r.out, ["65534", "65534", "65534 65533"]);
    const n = 10_000 + Math.floor(Math.random() * 80_000);
    const bg = await runNone(["/bin/sh", "-c", `sleep ${n} & echo started`]);
    assert.deepEqual(bg.out, ["started"]);
    await new Promise((r) => setTimeout(r, 50));
    const left = [...Deno.readDirSync("/proc")].filter((e) => {
      try {
        return Deno.readTextFileSync(`/proc/${e.name}/cmdline`) === `sleep\0${n}\0`;
      } catch {
        return false;
      }
    });
    assert.deepEqual(left, []);
    // A daemon that leaves the process group survives (Kaniko's model too), but the step still
    // ends: its output is not waited for past a grace period.
    const started = Date.now();
    const daemon = await runNone(["/bin/sh", "-c", `setsid sleep ${n + 1} & echo started`]);
    assert.deepEqual(daemon.out, ["started"]);
    assert.ok(Date.now() - started < 10_000);
    for (const e of Deno.readDirSync("/proc")) {
      try {
        if (Deno.readTextFileSync(`/proc/${e.name}/cmdline`) === `sleep\0${n + 1}\0`) {
          Deno.kill(+e.name, "SIGKILL");
        }
      } catch {
        // gone
      }
    }
  },
});

Deno.test({
  name: "RUN isolation none with mounts: a private mount namespace; nothing left on the host",
  ignore: noneIgnore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kaniko-none-" });
    try {
      const r = await runNone(
        [
          "/bin/sh",
          "-c",
          `pwd; cat ${dir}/secret; echo; echo x > ${dir}/mnt/f && cat ${dir}/mnt/f`,
        ],
        {
          workdir: dir,
          mounts: [
            { type: "tmpfs", target: `${dir}/mnt`, readOnly: false },
            { type: "secret", id: "s", target: `${dir}/secret`, readOnly: true },
          ],
          secrets: new Map([["s", { data: new TextEncoder().encode("value") }]]),
        },
      );
      assert.equal(r.code, 0, r.err.join("\n"));
      assert.deepEqual(r.out, [dir, "value", "x"]);
      assert.deepEqual([...Deno.readDirSync(dir)], [], "mount points removed");
      const mounted = Deno.readTextFileSync("/proc/self/mountinfo").includes(dir);
      assert.equal(mounted, false);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
