/**
 * How a simulated node runs a container's process: {@link CommandRunner} is injectable (unit
 * tests use a tiny script); {@link spawnRunner} spawns the argv in its own session (`setsid`) so
 * that deleting the pod can signal the whole process group, and streams stdout and stderr into
 * the pod log.
 * @module
 */

/** What a node asks a runner to start. */
export interface ProcessSpec {
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  /** The node's platform (`linux/arm64`), for runners that care. */
  platform: string;
  /** Called with every chunk of stdout and stderr, in arrival order. */
  onOutput(chunk: Uint8Array): void;
}

/** A started process. */
export interface RunningProcess {
  /** Resolves with the exit code (128 + signal number when killed by a signal). */
  exit: Promise<number>;
  /** Signals the process (and its process group). */
  kill(signal: Deno.Signal): void;
}

/** Starts a container's process. */
export type CommandRunner = (spec: ProcessSpec) => RunningProcess;

const SIGNALS: Record<string, number> = { SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGHUP: 1 };

async function pump(stream: ReadableStream<Uint8Array>, sink: (c: Uint8Array) => void) {
  for await (const chunk of stream) sink(chunk);
}

/** The default runner: `setsid ARGV…` with piped output; `kill` signals the process group. */
export const spawnRunner: CommandRunner = (spec) => {
  const child = new Deno.Command("setsid", {
    args: spec.argv,
    env: spec.env,
    clearEnv: true,
    cwd: spec.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const pumps = Promise.all([pump(child.stdout, spec.onOutput), pump(child.stderr, spec.onOutput)]);
  const exit = (async () => {
    const st = await child.status;
    await pumps.catch(() => {});
    return st.signal ? 128 + (SIGNALS[st.signal] ?? 0) : st.code;
  })();
  let done = false;
  exit.finally(() => (done = true));
  return {
    exit,
    kill(signal) {
      if (done) return;
      try {
        Deno.kill(-child.pid, signal);
      } catch {
        try {
          child.kill(signal);
        } catch { /* already gone */ }
      }
    },
  };
};
