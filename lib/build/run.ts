/**
 * RUN: one command in the build root, with Docker's semantics — exit code passed through (a
 * command killed by a signal gives 128+signal), processes it leaves behind killed when it ends,
 * output streamed line by line, `RUN --mount` (bind, cache, tmpfs, secret) and `--network`.
 *
 * - `chroot` isolation: new mount, PID, UTS and IPC namespaces (and network for
 *   `--network=none`); the sandbox script of `lib/build/isolation.ts` mounts a fresh `/proc`
 *   (Docker's masked and read-only paths), a private `/dev` (see `lib/build/mounts.ts`), a fresh
 *   read-only `/sys`, a copy of the host's `/etc/resolv.conf`, a generated `/etc/hosts` and the
 *   RUN mounts, then runs
 *   `setpriv --regid=G --groups=… --bounding-set=<Docker's caps> unshare --root=ROOT --wd=DIR
 *   --setuid=U -- ARGV` as its child. Mount points the image lacks are created and removed again
 *   afterwards (the snapshot never sees them); secrets live in a private 0700 directory outside
 *   the root (a tmpfs when /dev/shm is usable) and are bind-mounted read-only.
 * - `none` isolation (Kaniko's model): the command runs in `/` of the executor's container, as
 *   its own process group (killed when the command ends), through `setpriv` for the identity;
 *   RUN mounts need a private mount namespace (`unshare --mount`, i.e. CAP_SYS_ADMIN).
 * @module
 */
import { posix } from "node:path";
import { KanikoError } from "../errors.ts";
import { log } from "../log.ts";
import type { Isolation } from "./isolation.ts";
import { DEFAULT_CAPABILITIES, findExecutable, hostTools, SANDBOX_SCRIPT } from "./isolation.ts";
import { type MountPlan, planMounts, type SecretSource, type StepMount } from "./mounts.ts";

export type { SecretSource, StepMount } from "./mounts.ts";

/** Receives the command's output one line at a time (without the line break). */
export type OutputSink = (line: string) => void;

/** Who the command runs as (see `resolveUser` in `lib/build/users.ts`). */
export interface RunUser {
  uid: number;
  gid: number;
  /** Supplementary groups. */
  groups: number[];
  /** Used for `HOME` when `env` has none. */
  home?: string;
}

/** One RUN step. */
export interface RunStepSpec {
  /** The build root (a stage's private root for `chroot`, `/` for `none`). */
  root: string;
  /** The command: SHELL + command line for the shell form, the array for the exec form. */
  argv: string[];
  /** The final environment, `K=V` (image env, then the build args the step sees). */
  env: string[];
  user: RunUser;
  /** Working directory inside the root; created when missing (it then stays in the layer). */
  workdir: string;
  isolation: Isolation;
  /** `RUN --mount`s, bind sources resolved by the caller. */
  mounts?: StepMount[];
  /** `--secret` sources by id. */
  secrets?: Map<string, SecretSource>;
  /** `RUN --network`: `none` gets an empty network namespace; `default` and `host` share the host's. */
  network?: "default" | "none" | "host";
  /** Parent directory of `type=cache` mounts (e.g. under `--kaniko-dir`). */
  cacheDir?: string;
  /**
   * Scratch directory for the step's private files (outside the root; in `none` isolation put it
   * under the kaniko dir so it stays out of snapshots). Default: the system temp directory.
   */
  tmpDir?: string;
  /** Hostname inside the sandbox (chroot); BuildKit's `buildkitsandbox` by default. */
  hostname?: string;
  /** The command's standard output, line by line (discarded when absent). */
  stdout?: OutputSink;
  /** The command's standard error, line by line (discarded when absent). */
  stderr?: OutputSink;
  /** Aborting kills the command and everything it started; runStep then rejects. */
  signal?: AbortSignal;
}

/** How the command ended. */
export interface RunStepResult {
  /** Exit status; 128+N when killed by signal N. */
  code: number;
}

/** Variables POSIX shells set and export themselves (dash: PWD; bash: also SHLVL, OLDPWD, _). */
const SHELL_VARIABLES = ["PWD", "OLDPWD", "SHLVL", "_"];

/** How long output is still read after the command ended (then a stray daemon is left alone). */
const PIPE_GRACE_MS = 2000;

/** Lines longer than this are passed on in pieces. */
const MAX_LINE = 64 * 1024;

/** Runs one RUN step to completion (see the module comment). */
export async function runStep(spec: RunStepSpec): Promise<RunStepResult> {
  checkSpec(spec);
  spec.signal?.throwIfAborted();
  const root = Deno.realPathSync(spec.root);
  if (spec.isolation === "none" && root !== "/") {
    throw new KanikoError(`--isolation=none runs in /, not in ${spec.root}`, {
      hint: "use --isolation=chroot for a private root",
    });
  }
  if (spec.isolation === "chroot" && root === "/") {
    throw new KanikoError("--isolation=chroot needs a private root directory, not /");
  }
  const scratch = new Scratch(spec.tmpDir, root);
  let plan: MountPlan | undefined;
  try {
    plan = await planMounts({
      root,
      system: spec.isolation === "chroot",
      mounts: spec.mounts ?? [],
      secrets: spec.secrets ?? new Map(),
      cacheDir: spec.cacheDir,
      privateDir: scratch.dir,
      secretDir: () => scratch.secretDir(),
      workdir: spec.workdir || "/",
      hostname: spec.hostname ?? "buildkitsandbox",
    });
    const env = environment(spec, plan.env);
    if (spec.isolation === "none" && plan.ops.length === 0) {
      return await runDirect(spec, root, plan.workdir, env);
    }
    return await runSandboxed(spec, root, plan, env, scratch);
  } finally {
    plan?.stubs.cleanup();
    plan?.release();
    scratch.remove();
  }
}

function checkSpec(spec: RunStepSpec): void {
  if (spec.argv.length === 0 || spec.argv[0] === "") {
    throw new KanikoError("RUN: empty command");
  }
  for (const s of [...spec.argv, ...spec.env]) {
    if (s.includes("\0")) throw new KanikoError("RUN: the command or environment holds a NUL byte");
  }
  const { uid, gid, groups } = spec.user;
  for (const id of [uid, gid, ...groups]) {
    if (!Number.isInteger(id) || id < 0 || id > 0xfffffffe) {
      throw new KanikoError(`RUN: invalid user or group id ${id}`);
    }
  }
  if (!posix.isAbsolute(spec.root)) throw new KanikoError(`RUN: root ${spec.root} is not absolute`);
}

/** The command's environment as a record: `env`, then secret variables, HOME when missing. */
function environment(spec: RunStepSpec, secretEnv: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of spec.env) {
    const eq = entry.indexOf("=");
    if (eq <= 0) continue;
    env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  Object.assign(env, secretEnv);
  if (env.HOME === undefined && spec.user.home) env.HOME = spec.user.home;
  return env;
}

/** The step's private directories, outside the root; removed at the end of the step. */
class Scratch {
  readonly dir: string;
  #secrets?: string;

  constructor(parent: string | undefined, root: string) {
    if (parent) Deno.mkdirSync(parent, { recursive: true });
    this.dir = Deno.makeTempDirSync({ dir: parent, prefix: "kaniko-run-" });
    if (root !== "/" && (this.dir + "/").startsWith(root + "/")) {
      Deno.removeSync(this.dir);
      throw new KanikoError(`RUN: the scratch directory ${this.dir} is inside the build root`, {
        hint: "set TMPDIR outside the build root",
      });
    }
  }

  /** A 0700 directory for secret files: on /dev/shm (memory) when usable. */
  secretDir(): string {
    if (this.#secrets) return this.#secrets;
    try {
      this.#secrets = Deno.makeTempDirSync({ dir: "/dev/shm", prefix: "kaniko-secrets-" });
    } catch {
      this.#secrets = Deno.makeTempDirSync({ dir: this.dir, prefix: "secrets-" });
    }
    Deno.chmodSync(this.#secrets, 0o700);
    return this.#secrets;
  }

  remove(): void {
    for (const dir of [this.#secrets, this.dir]) {
      if (!dir) continue;
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch (e) {
        log.debug("cannot remove a RUN scratch directory", { dir, error: String(e) });
      }
    }
  }
}

/** The arguments that switch to the step's identity (setpriv, util-linux). */
function identityArgs(user: RunUser): string[] {
  const groups = [...new Set(user.groups)];
  return [
    `--regid=${user.gid}`,
    groups.length > 0 ? `--groups=${groups.join(",")}` : "--clear-groups",
  ];
}

/** chroot isolation, or none isolation with mounts: the sandbox script under unshare. */
async function runSandboxed(
  spec: RunStepSpec,
  root: string,
  plan: MountPlan,
  env: Record<string, string>,
  scratch: Scratch,
): Promise<RunStepResult> {
  const tools = hostTools();
  const logFile = posix.join(scratch.dir, "sandbox.log");
  const ready = posix.join(scratch.dir, "ready");
  const chroot = spec.isolation === "chroot";
  const namespaces = chroot
    ? ["--mount", "--pid", "--fork", "--kill-child", "--uts", "--ipc"]
    : ["--mount"];
  if (chroot && spec.network === "none") namespaces.push("--net");
  const ops = [...plan.ops];
  if (chroot) {
    ops.push("hostname", spec.hostname ?? "buildkitsandbox");
    if (spec.network === "none") ops.push("lo");
  } else {
    ops.push("cd", posix.join(root, plan.workdir));
  }
  // The helper shell exports variables of its own: give the command its environment back.
  const command: string[] = [tools.env];
  for (const name of SHELL_VARIABLES) command.push("-u", name);
  for (const name of SHELL_VARIABLES) {
    if (env[name] !== undefined) command.push(`${name}=${env[name]}`);
  }
  if (chroot) {
    command.push(
      tools.setpriv,
      ...identityArgs(spec.user),
      `--bounding-set=-all,${DEFAULT_CAPABILITIES.map((c) => `+${c}`).join(",")}`,
      "--inh-caps=-all",
      tools.unshare,
      `--root=${root}`,
      `--wd=${plan.workdir}`,
    );
    if (spec.user.uid !== 0) command.push(`--setuid=${spec.user.uid}`);
    command.push("--");
  } else if (needsSetpriv(spec.user)) {
    command.push(tools.setpriv, `--reuid=${spec.user.uid}`, ...identityArgs(spec.user), "--");
  }
  command.push(...spec.argv);
  const args = [
    ...namespaces,
    "--propagation",
    "private",
    "--",
    tools.sh,
    "-c",
    SANDBOX_SCRIPT,
    "kaniko-run",
    logFile,
    ready,
    tools.path,
    ...ops,
    "--",
    ...command,
  ];
  log.debug("RUN sandbox", { isolation: spec.isolation, root, workdir: plan.workdir });
  const child = new Deno.Command(tools.unshare, {
    args,
    clearEnv: true,
    env,
    cwd: "/",
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    detached: !chroot,
  }).spawn();
  let readySeen = false;
  const isReady = () => {
    if (!readySeen) {
      try {
        Deno.statSync(ready);
        readySeen = true;
      } catch {
        // setup still running (or failed)
      }
    }
    return readySeen;
  };
  const held: [OutputSink | undefined, string][] = [];
  const gate = (sink: OutputSink | undefined): OutputSink => (line) => {
    if (!isReady()) {
      held.push([sink, line]);
      return;
    }
    flushHeld(held);
    sink?.(line);
  };
  const status = await supervise(child, spec, !chroot, gate(spec.stdout), gate(spec.stderr));
  if (!isReady()) {
    let why = "";
    try {
      why = Deno.readTextFileSync(logFile).trim();
    } catch {
      // nothing logged: unshare itself failed
    }
    const early = held.map(([, line]) => line).join("; ").trim();
    spec.signal?.throwIfAborted();
    throw new KanikoError(
      `RUN: cannot set up the ${spec.isolation} sandbox: ${
        [why, early].filter(Boolean).join("; ") || `exit code ${status.code}`
      }`,
      {
        hint: chroot
          ? "the executor needs root with CAP_SYS_ADMIN for --isolation=chroot"
          : "RUN --mount in --isolation=none needs CAP_SYS_ADMIN",
      },
    );
  }
  flushHeld(held);
  return { code: status.code };
}

function flushHeld(held: [OutputSink | undefined, string][]): void {
  for (const [sink, line] of held.splice(0)) sink?.(line);
}

/** Whether the step's identity differs from the executor's own. */
function needsSetpriv(user: RunUser): boolean {
  if (user.uid !== Deno.uid() || user.gid !== Deno.gid()) return true;
  const wanted = [...new Set(user.groups)].sort((a, b) => a - b).join(",");
  return wanted !== currentGroups().join(",");
}

/** The executor's supplementary groups (`Groups:` of /proc/self/status), sorted. */
function currentGroups(): number[] {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const line = status.split("\n").find((l) => l.startsWith("Groups:")) ?? "Groups:";
    return [...new Set(line.slice(7).trim().split(/\s+/).filter(Boolean).map(Number))]
      .sort((a, b) => a - b);
  } catch {
    return [];
  }
}

/** none isolation without mounts: the command itself, in its own process group. */
async function runDirect(
  spec: RunStepSpec,
  root: string,
  workdir: string,
  env: Record<string, string>,
): Promise<RunStepResult> {
  let argv = spec.argv;
  if (needsSetpriv(spec.user)) {
    const tools = hostTools();
    argv = [tools.setpriv, `--reuid=${spec.user.uid}`, ...identityArgs(spec.user), "--", ...argv];
  } else if (!argv[0].includes("/")) {
    const found = findExecutable(
      argv[0],
      env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    );
    if (!found) {
      spec.stderr?.(`exec: "${argv[0]}": executable file not found in $PATH`);
      return { code: 127 };
    }
    argv = [found, ...argv.slice(1)];
  }
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      clearEnv: true,
      env,
      cwd: posix.join(root, workdir),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      detached: true,
    }).spawn();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied) {
      spec.stderr?.(`exec: "${argv[0]}": ${(e as Error).message}`);
      return { code: e instanceof Deno.errors.NotFound ? 127 : 126 };
    }
    throw e;
  }
  const status = await supervise(
    child,
    spec,
    true,
    spec.stdout ?? (() => {}),
    spec.stderr ?? (() => {}),
  );
  return { code: status.code };
}

/**
 * Waits for the child while streaming its output; kills what it left behind (its process group
 * when `group`; the PID namespace does it otherwise) and honours the abort signal.
 */
async function supervise(
  child: Deno.ChildProcess,
  spec: RunStepSpec,
  group: boolean,
  out: OutputSink,
  err: OutputSink,
): Promise<Deno.CommandStatus> {
  const killAll = () => {
    try {
      if (group) Deno.kill(-child.pid, "SIGKILL");
      else child.kill("SIGKILL");
    } catch {
      // already gone
    }
  };
  const onAbort = () => killAll();
  spec.signal?.addEventListener("abort", onAbort, { once: true });
  const stop = new AbortController();
  const pumps = Promise.all([
    pumpLines(child.stdout, out, stop.signal),
    pumpLines(child.stderr, err, stop.signal),
  ]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const status = await child.status;
    // Background processes of the step hold the pipes open: end them now.
    if (group) killAll();
    // A daemon that left the process group (setsid, none isolation only) may keep them open:
    // stop reading after a grace period.
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        log.warn("RUN left a process running that still holds its output; not waiting for it");
        stop.abort();
        resolve();
      }, PIPE_GRACE_MS);
    });
    await Promise.race([pumps, grace]);
    await pumps;
    spec.signal?.throwIfAborted();
    return status;
  } finally {
    clearTimeout(timer);
    spec.signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * Splits a byte stream into lines (UTF-8, `\r\n` or `\n`), passing each to `sink`; `stop`
 * cancels the stream (what was read is still passed on).
 */
export async function pumpLines(
  stream: ReadableStream<Uint8Array>,
  sink: OutputSink,
  stop?: AbortSignal,
): Promise<void> {
  const decoder = new TextDecoder();
  let rest = "";
  const emit = (line: string) => {
    try {
      sink(line.endsWith("\r") ? line.slice(0, -1) : line);
    } catch (e) {
      log.debug("RUN output sink failed", { error: String(e) });
    }
  };
  const reader = stream.getReader();
  const cancel = () => reader.cancel().catch(() => {});
  stop?.addEventListener("abort", cancel, { once: true });
  while (true) {
    const { value: chunk, done } = await reader.read().catch(() => ({
      value: undefined,
      done: true,
    }));
    if (done || !chunk) break;
    rest += decoder.decode(chunk, { stream: true });
    const lines = rest.split("\n");
    rest = lines.pop()!;
    for (const line of lines) emit(line);
    while (rest.length > MAX_LINE) {
      emit(rest.slice(0, MAX_LINE));
      rest = rest.slice(MAX_LINE);
    }
  }
  stop?.removeEventListener("abort", cancel);
  rest += decoder.decode();
  if (rest !== "") emit(rest);
}
