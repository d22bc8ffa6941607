/**
 * Process helpers of the test bed: running commands, starting detached services with pid and log
 * files, recognising our own processes by `/proc/PID/cmdline`, stopping only those, free ports,
 * and an exclusive lock on the state directory.
 * @module
 */
import { dirname, join } from "node:path";

/** Result of {@link run}. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@link run}. */
export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  stdin?: Uint8Array | string;
  /** Return a non-zero exit instead of throwing. */
  allowFail?: boolean;
}

/** Runs a command to completion, capturing its output; throws on failure unless `allowFail`. */
export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    env: opts.env,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(
      typeof opts.stdin === "string" ? new TextEncoder().encode(opts.stdin) : opts.stdin,
    );
    await w.close();
  }
  const out = await child.output();
  const res = {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
  if (res.code !== 0 && !opts.allowFail) {
    const tail = (res.stderr || res.stdout).trim().split("\n").slice(-5).join(" | ");
    throw new Error(`${cmd} ${args.join(" ")} exited ${res.code}: ${tail}`);
  }
  return res;
}

/** True when `cmd` is on PATH. */
export async function which(cmd: string): Promise<boolean> {
  const r = await run("sh", ["-c", `command -v "$1" >/dev/null 2>&1`, "sh", cmd], {
    allowFail: true,
  });
  return r.code === 0;
}

/** True when `pid` exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/**
 * The argv of a live (non-zombie) process, or undefined when it is gone. It can be empty for a
 * moment while the process execs.
 */
export function procCmdline(pid: number): string[] | undefined {
  if (!isAlive(pid)) return undefined;
  try {
    const argv = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
    if (argv.at(-1) === "") argv.pop();
    return argv;
  } catch {
    return isAlive(pid) ? [] : undefined;
  }
}

/** A service of ours: its pid file and what its cmdline must contain to be recognised. */
export interface ServiceRef {
  pidFile: string;
  /** Every marker must appear as an argv element (exactly) for the pid to be ours. */
  markers: string[];
}

/** The pid of our running service, or undefined (a stale pid file is ignored). */
export function livePid(svc: ServiceRef): number | undefined {
  let pid: number;
  try {
    pid = Number(Deno.readTextFileSync(svc.pidFile).trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  const argv = procCmdline(pid);
  if (!argv?.length) return undefined;
  return svc.markers.every((m) => argv.includes(m)) ? pid : undefined;
}

/** Options of {@link spawnDetached}. */
export interface SpawnOptions {
  pidFile: string;
  logFile: string;
  cwd?: string;
  env?: Record<string, string>;
}

/**
 * Starts `argv` in a new session (`setsid`), detached from us, stdin from /dev/null and output
 * appended to `logFile`; writes and returns its pid. `sh`'s background job is not a process-group
 * leader, so `setsid` execs in place and `$!` is the service's own pid.
 */
export async function spawnDetached(argv: string[], opts: SpawnOptions): Promise<number> {
  await Deno.mkdir(dirname(opts.pidFile), { recursive: true });
  await Deno.mkdir(dirname(opts.logFile), { recursive: true });
  const script = 'log="$1"; shift; setsid "$@" >>"$log" 2>&1 </dev/null & echo $!';
  const r = await run("sh", ["-c", script, "sh", opts.logFile, ...argv], {
    cwd: opts.cwd,
    env: opts.env,
  });
  const pid = Number(r.stdout.trim());
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`could not start ${argv[0]}`);
  await Deno.writeTextFile(opts.pidFile, `${pid}\n`);
  return pid;
}

/** Waits until `pid` has exited (or turned zombie); false on timeout. */
export async function waitExit(pid: number, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (!isAlive(pid)) return true;
    await sleep(50);
  }
  return !isAlive(pid);
}

/**
 * Stops our service: only the pid in its pid file, only if its cmdline carries the markers.
 * SIGTERM, then SIGKILL after 5 s. Removes the pid file. Returns the pid stopped, if any.
 */
export async function stopService(svc: ServiceRef): Promise<number | undefined> {
  const pid = livePid(svc);
  if (pid !== undefined) {
    try {
      Deno.kill(pid, "SIGTERM");
    } catch { /* already gone */ }
    if (!(await waitExit(pid, 5000))) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* already gone */ }
      await waitExit(pid, 2000);
    }
  }
  await Deno.remove(svc.pidFile).catch(() => {});
  return pid;
}

/** A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, close). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export async function portInUse(port: number): Promise<boolean> {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    c.close();
    return true;
  } catch {
    return false;
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Runs `fn` holding an exclusive `flock` on `<dir>/.lock`, so that concurrent `start`s (parallel
 * test files, a shell) do not race. The lock is released when the process exits, whatever happens.
 */
export async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  await Deno.mkdir(dir, { recursive: true });
  const file = await Deno.open(join(dir, ".lock"), { create: true, write: true });
  try {
    await file.lock(true);
    return await fn();
  } finally {
    file.close();
  }
}

/** Last `n` lines of a log file, for error messages. */
export function logTail(path: string, n = 8): string {
  try {
    return Deno.readTextFileSync(path).trimEnd().split("\n").slice(-n).join("\n");
  } catch {
    return "(no log)";
  }
}
