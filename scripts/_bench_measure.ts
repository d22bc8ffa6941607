/**
 * Running a command for the benchmarks (registry, build, multi-platform): wall time, peak RSS (`/usr/bin/time -f %M`, which
 * reports the largest resident set of the process and the children it waited for; without it,
 * VmHWM of the process polled from /proc), and its output.
 * @module
 */

const TIME = "/usr/bin/time";

/** One timed command. */
export interface Timed {
  seconds: number;
  /** Peak resident set size in bytes. */
  peakRss: number;
  /** `Date.now()` just before the spawn. */
  startMs: number;
  stdout: string;
  stderr: string;
}

let haveTime: boolean | undefined;

/** How peak RSS is measured, for the report. */
export function rssMethod(): string {
  return haveTime === false ? "VmHWM polled from /proc" : "/usr/bin/time %M";
}

/** Runs `argv`, timing it and measuring its peak RSS; throws when it fails. */
export async function timed(
  argv: string[],
  opts: { env?: Record<string, string>; cwd?: string } = {},
): Promise<Timed> {
  haveTime ??= await Deno.stat(TIME).then(() => true, () => false);
  const dec = new TextDecoder();
  if (haveTime) {
    const out = await Deno.makeTempFile({ prefix: "bench-time-" });
    try {
      const startMs = Date.now();
      const t0 = performance.now();
      const r = await new Deno.Command(TIME, {
        args: ["-f", "%M", "-o", out, ...argv],
        env: opts.env,
        cwd: opts.cwd,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const seconds = (performance.now() - t0) / 1000;
      check(argv, r);
      const kb = Number((await Deno.readTextFile(out)).trim().split("\n").at(-1));
      return {
        seconds,
        peakRss: kb * 1024,
        startMs,
        stdout: dec.decode(r.stdout),
        stderr: dec.decode(r.stderr),
      };
    } finally {
      await Deno.remove(out).catch(() => {});
    }
  }
  const startMs = Date.now();
  const t0 = performance.now();
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: opts.env,
    cwd: opts.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let peak = 0;
  const poll = setInterval(() => {
    try {
      const status = Deno.readTextFileSync(`/proc/${child.pid}/status`);
      peak = Math.max(peak, Number(status.match(/^VmHWM:\s+(\d+)/m)?.[1] ?? 0) * 1024);
    } catch {
      // exited
    }
  }, 20);
  const r = await child.output();
  clearInterval(poll);
  const seconds = (performance.now() - t0) / 1000;
  check(argv, r);
  return {
    seconds,
    peakRss: peak,
    startMs,
    stdout: dec.decode(r.stdout),
    stderr: dec.decode(r.stderr),
  };
}

function check(argv: string[], r: Deno.CommandOutput): void {
  if (r.code === 0) return;
  const text = new TextDecoder().decode(r.stderr).trim() ||
    new TextDecoder().decode(r.stdout).trim();
  const err = text.split("\n").slice(-6).join(" | ");
  throw new Error(`${argv.slice(0, 6).join(" ")} … exited ${r.code}: ${err}`);
}

/** Median of a non-empty list. */
export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Where our build's time went, from its `--log-format=json --log-timestamp -v debug` lines:
 * `start` (exec to the "build options" line: Deno start-up, module load, flags), `base` (to the
 * first step: registry session, base image pull and unpack, context), one entry per step (from
 * its line to its "done" line), `push` (last step to the "pushed" line: config, manifest, layer
 * uploads) and `exit` (to the process's end). Seconds; empty when the log has no timestamps.
 */
export function ourPhases(t: Timed): Record<string, number> {
  const lines: { ms: number; msg: string }[] = [];
  for (const line of t.stderr.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const rec = JSON.parse(line);
      if (typeof rec.time === "string" && typeof rec.msg === "string") {
        lines.push({ ms: Date.parse(rec.time), msg: rec.msg });
      }
    } catch {
      // RUN output or other text
    }
  }
  if (lines.length === 0) return {};
  const endMs = t.startMs + t.seconds * 1000;
  const phases: Record<string, number> = {};
  const at = (re: RegExp) => lines.find((l) => re.test(l.msg))?.ms;
  const options = at(/^build options$/) ?? lines[0].ms;
  phases.start = (options - t.startMs) / 1000;
  const steps = lines.filter((l) => /STEP \d+\/\d+: /.test(l.msg));
  const firstStep = steps[0]?.ms ?? options;
  phases.base = (firstStep - options) / 1000;
  let last = firstStep;
  let open: { ms: number; name: string } | undefined;
  for (const l of steps) {
    const m = l.msg.match(/STEP (\d+)\/\d+: (.*)$/)!;
    if (m[2].startsWith("done in")) {
      if (open) phases[open.name] = (l.ms - open.ms) / 1000;
      last = l.ms;
      open = undefined;
    } else {
      open = { ms: l.ms, name: `step ${m[1]} ${m[2].split(" ")[0]}` };
    }
  }
  const pushed = at(/^pushed /);
  if (pushed !== undefined) {
    phases.push = (pushed - last) / 1000;
    last = pushed;
  }
  phases.exit = (endMs - last) / 1000;
  return phases;
}
