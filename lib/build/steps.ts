/**
 * What each instruction does to a stage: RUN and COPY/ADD change files (their tar entries become
 * the step's layer), WORKDIR may create a directory, the others only change the config.
 * @module
 */
import { KanikoError } from "../errors.ts";
import type { PlannedInstruction } from "../dockerfile/plan.ts";
import { parseRunMount } from "../dockerfile/run_flags.ts";
import { diffTrees, entriesForPaths, layerEntries } from "../snapshot/mod.ts";
import type { TarWriteEntry } from "../tar/mod.ts";
import { classifyAddSource } from "./add_sources.ts";
import {
  addOnBuild,
  addVolumes,
  commandLine,
  envOf,
  expose,
  setAuthor,
  setCmd,
  setEntrypoint,
  setEnv,
  setHealthcheck,
  setLabels,
  setShell,
  setStopSignal,
  setUser,
  setWorkdir,
} from "./config.ts";
import { type CopySource, copyStep } from "./copy.ts";
import { formatStep, onbuildTrigger } from "./describe.ts";
import { resolveInRoot, type StepMount } from "./mounts.ts";
import { runStep } from "./run.ts";
import type { StageBuild } from "./stage.ts";
import { resolveUser } from "./users.ts";

/** What a step did: its history text and, when it changed files, the layer's entries. */
export interface StepOutcome {
  createdBy: string;
  entries?: AsyncIterable<TarWriteEntry>;
}

type Handler = (sb: StageBuild, step: PlannedInstruction) => Promise<StepOutcome>;

const meta = (fn: (sb: StageBuild, step: PlannedInstruction) => void): Handler => (sb, step) => {
  fn(sb, step);
  return Promise.resolve({ createdBy: formatStep(step) });
};

const pairs = (args: string[]): Array<[string, string]> => {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < args.length; i += 2) out.push([args[i], args[i + 1]]);
  return out;
};

/** The handler of every instruction keyword. */
export const stepHandlers: Record<string, Handler> = {
  RUN: run,
  COPY: copy,
  ADD: copy,
  WORKDIR: workdir,
  ENV: meta((sb, s) => setEnv(sb.state, pairs(s.expanded))),
  LABEL: meta((sb, s) => setLabels(sb.state, pairs(s.expanded))),
  EXPOSE: meta((sb, s) => expose(sb.state, s.expanded)),
  VOLUME: meta((sb, s) => addVolumes(sb.state, s.expanded)),
  USER: meta((sb, s) => setUser(sb.state, s.expanded[0] ?? "")),
  STOPSIGNAL: meta((sb, s) => setStopSignal(sb.state, s.expanded[0] ?? "")),
  SHELL: meta((sb, s) => setShell(sb.state, s.expanded)),
  CMD: meta((sb, s) => setCmd(sb.state, s.expanded, s.instruction.json)),
  ENTRYPOINT: meta((sb, s) => setEntrypoint(sb.state, s.expanded, s.instruction.json)),
  HEALTHCHECK: meta((sb, s) =>
    setHealthcheck(sb.state, s.expanded, s.expandedFlags, s.instruction.json)
  ),
  ONBUILD: meta((sb, s) => addOnBuild(sb.state, onbuildTrigger(s))),
  MAINTAINER: meta((sb, s) => setAuthor(sb.state, s.expanded.join(" "))),
  ARG: meta(() => {}),
};

/** The `Dockerfile:LINE:` prefix of a step's errors. */
function where(sb: StageBuild, step: PlannedInstruction): string {
  return `${sb.env.plan.file}:${step.line}`;
}

/** Runs `fn`, prefixing a KanikoError it throws with the step's location. */
async function located<T>(sb: StageBuild, step: PlannedInstruction, fn: () => Promise<T>) {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof KanikoError && !err.message.startsWith(sb.env.plan.file + ":")) {
      throw new KanikoError(`${where(sb, step)}: ${step.keyword}: ${err.message}`, {
        exitCode: err.exitCode,
        hint: err.hint,
        code: err.code,
        cause: err,
      });
    }
    throw err;
  }
}

async function run(sb: StageBuild, step: PlannedInstruction): Promise<StepOutcome> {
  const { argv, mounts: pipes } = await runCommand(sb, step);
  const before = await sb.treeBefore();
  const config = sb.state.config.config ?? {};
  const user = await located(
    sb,
    step,
    () => Promise.resolve(resolveUser(sb.root, config.User || "root")),
  );
  const mounts = [...pipes, ...await located(sb, step, () => runMounts(sb, step))];
  const result = await located(sb, step, () =>
    runStep({
      root: sb.root,
      argv,
      env: runEnv(sb, step),
      user,
      workdir: config.WorkingDir || "/",
      isolation: sb.env.isolation,
      mounts,
      secrets: sb.env.secrets,
      network: runNetwork(step),
      cacheDir: sb.env.cacheDir,
      tmpDir: sb.env.tmpDir,
      stdout: (line) => sb.env.progress.output(line, "stdout"),
      stderr: (line) => sb.env.progress.output(line, "stderr"),
    }));
  if (result.code !== 0) {
    throw new KanikoError(
      `${where(sb, step)}: RUN ${
        step.expanded.join(" ")
      }: the command returned a non-zero code: ${result.code}`,
      { exitCode: result.code },
    );
  }
  const after = await sb.scan();
  sb.tree = after;
  const changes = await diffTrees(before, after, sb.root);
  return {
    createdBy: `RUN ${argv.join(" ")}`,
    entries: changes.length
      ? layerEntries(sb.root, changes, { mtime: sb.env.mtime, mtimeResolution: "s" })
      : undefined,
  };
}

/** A command line that is only a heredoc marker (`<<EOF`, `<<-"EOF"`): BuildKit's ParseHeredoc. */
const LONE_HEREDOC = /^\d*<<-?\s*(["']?)[A-Za-z_]\w*\1$/;

/**
 * A RUN's argv with its heredocs, as BuildKit runs them: a command line that is only `<<EOF` runs
 * the body with the shell — or, when the body starts with `#!`, as a script file from a read-only
 * `/dev/pipes` —, any other command line is handed to the shell with its heredocs appended.
 */
async function runCommand(
  sb: StageBuild,
  step: PlannedInstruction,
): Promise<{ argv: string[]; mounts: StepMount[] }> {
  const docs = step.instruction.heredocs;
  const json = step.instruction.json;
  if (docs.length === 0 || json) {
    return { argv: commandLine(sb.state, step.expanded, json), mounts: [] };
  }
  const line = step.expanded.join(" ");
  if (!LONE_HEREDOC.test(line.trim())) {
    const full = docs.reduce((text, d) => `${text}\n${d.content}${d.name}`, line);
    return { argv: commandLine(sb.state, [full], false), mounts: [] };
  }
  const doc = docs[0];
  if (!doc.content.startsWith("#!")) {
    return { argv: commandLine(sb.state, [doc.content], false), mounts: [] };
  }
  const dir = await Deno.makeTempDir({ dir: sb.env.tmpDir, prefix: "pipes-" });
  await Deno.chmod(dir, 0o755);
  await Deno.writeTextFile(`${dir}/${doc.name}`, doc.content);
  await Deno.chmod(`${dir}/${doc.name}`, 0o755);
  const pipes: StepMount = { type: "bind", target: "/dev/pipes", readOnly: true, sourcePath: dir };
  return { argv: commandLine(sb.state, [`/dev/pipes/${doc.name}`], false), mounts: [pipes] };
}

/** The environment of a RUN: the image's ENV, then the build args in scope, then proxy args. */
function runEnv(sb: StageBuild, step: PlannedInstruction): string[] {
  const env = new Map<string, string>();
  for (const e of envOf(sb.state)) {
    const i = e.indexOf("=");
    env.set(i < 0 ? e : e.slice(0, i), i < 0 ? "" : e.slice(i + 1));
  }
  for (const [k, v] of Object.entries(step.scope)) if (!env.has(k)) env.set(k, v);
  for (const [k, v] of sb.env.plan.proxyEnv) if (!env.has(k)) env.set(k, v);
  return [...env].map(([k, v]) => `${k}=${v}`);
}

function flagValues(step: PlannedInstruction, name: string): string[] {
  const out: string[] = [];
  for (const f of step.expandedFlags) {
    if (f === `--${name}`) out.push("true");
    else if (f.startsWith(`--${name}=`)) out.push(f.slice(name.length + 3));
  }
  return out;
}

function runNetwork(step: PlannedInstruction): "default" | "none" | "host" | undefined {
  const v = flagValues(step, "network").at(-1);
  return v === "none" || v === "host" || v === "default" ? v : undefined;
}

async function runMounts(sb: StageBuild, step: PlannedInstruction): Promise<StepMount[]> {
  const mounts: StepMount[] = [];
  for (const value of flagValues(step, "mount")) {
    const mount: StepMount = parseRunMount(value);
    if (mount.type === "bind" || (mount.type === "cache" && mount.from)) {
      const root = mount.from ? await sourceRoot(sb, step, mount.from) : sb.env.context.root;
      mount.sourcePath = resolveInRoot(root, mount.source ?? "/");
    }
    mounts.push(mount);
  }
  return mounts;
}

/** The root directory a `from=` names: a built stage's root, or an image unpacked once. */
async function sourceRoot(sb: StageBuild, step: PlannedInstruction, from: string): Promise<string> {
  const ref = step.sources.find((s) => s.flag === `--mount from=${from}`);
  if (ref?.kind === "image") {
    return await sb.env.bases.unpacked(ref.ref, sb.stage.buildFor, sb.env.tmpDir);
  }
  const root = ref?.kind === "stage" ? sb.env.stages.get(ref.index)?.root : undefined;
  if (root) return root;
  throw new KanikoError(`${where(sb, step)}: RUN --mount from=${from}: no such stage was built`, {
    hint: "name an earlier stage or an image",
  });
}

async function copy(sb: StageBuild, step: PlannedInstruction): Promise<StepOutcome> {
  const args = step.expanded.filter((a) => a !== "");
  const dest = args.at(-1) ?? "";
  const sources: CopySource[] = [];
  const patterns: string[] = [];
  for (const arg of args.slice(0, -1)) {
    const heredoc = heredocOf(step, arg);
    if (heredoc) sources.push({ heredoc });
    else if (step.keyword === "ADD" && classifyAddSource(arg) === "url") sources.push({ url: arg });
    else if (step.keyword === "ADD" && classifyAddSource(arg) === "git") sources.push({ git: arg });
    else patterns.push(arg);
  }
  if (patterns.length) sources.push(await copySource(sb, step));
  const one = (name: string) => flagValues(step, name).at(-1);
  const result = await located(sb, step, () =>
    copyStep({
      root: sb.root,
      kind: step.keyword as "COPY" | "ADD",
      sources,
      patterns,
      dest,
      workdir: sb.state.config.config?.WorkingDir || "/",
      chown: one("chown"),
      chmod: one("chmod"),
      parents: one("parents") === "true",
      exclude: flagValues(step, "exclude"),
      link: one("link") === "true",
      checksum: one("checksum"),
      keepGitDir: one("keep-git-dir") === "true",
      reproducibleMtime: sb.env.mtime,
      createdMtime: createdNs(sb),
      tempDir: sb.env.tmpDir,
    }));
  sb.tree = undefined;
  return {
    createdBy: formatStep(step),
    entries: result.touched.length
      ? entriesForPaths(sb.root, result.touched, { mtime: sb.env.mtime, mtimeResolution: "s" })
      : undefined,
  };
}

function heredocOf(step: PlannedInstruction, arg: string) {
  const m = arg.match(/^<<-?(["']?)([^"']+)\1$/);
  if (!m) return undefined;
  return step.heredocs.find((h) => h.name === m[2]);
}

async function copySource(sb: StageBuild, step: PlannedInstruction): Promise<CopySource> {
  const from = step.sources[0];
  if (!from) return { from: "context", context: sb.env.context };
  if (from.kind === "stage") {
    const built = sb.env.stages.get(from.index);
    if (!built) throw new KanikoError(`${where(sb, step)}: stage ${from.index} was not built`);
    return { from: "stage", root: built.root, name: `stage ${from.index}` };
  }
  if (from.ref === "scratch") {
    const empty = await Deno.makeTempDir({ dir: sb.env.tmpDir, prefix: "scratch-" });
    return { from: "image", root: empty, name: "scratch" };
  }
  const root = await sb.env.bases.unpacked(from.ref, sb.stage.buildFor, sb.env.tmpDir);
  return { from: "image", root, name: from.ref };
}

async function workdir(sb: StageBuild, step: PlannedInstruction): Promise<StepOutcome> {
  const dir = setWorkdir(sb.state, step.expanded[0] ?? "/");
  const created = await located(sb, step, () => makeDirs(sb, dir));
  if (created.length) sb.tree = undefined;
  return {
    createdBy: formatStep(step),
    entries: created.length
      ? entriesForPaths(sb.root, created, { mtime: sb.env.mtime, mtimeResolution: "s" })
      : undefined,
  };
}

/** Creates `dir` inside the root like `mkdir -p` (0755, owned by USER); returns what it created. */
async function makeDirs(sb: StageBuild, dir: string): Promise<string[]> {
  const user = sb.state.config.config?.User;
  const owner = user ? resolveUser(sb.root, user) : { uid: 0, gid: 0 };
  const created: string[] = [];
  const parts = dir.split("/").filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const rel = parts.slice(0, i).join("/");
    const host = resolveInRoot(sb.root, rel);
    try {
      await Deno.lstat(host);
    } catch {
      await Deno.mkdir(host, { mode: 0o755 });
      await Deno.chmod(host, 0o755);
      await Deno.chown(host, owner.uid, owner.gid);
      created.push(host.slice(sb.root.length + 1));
    }
  }
  // Every directory is made by now, so none changes its parent's mtime after this.
  const time = new Date(Number(createdNs(sb) / 1_000_000n));
  for (const rel of created) await Deno.utime(`${sb.root}/${rel}`, time, time);
  return created;
}

/**
 * The mtime (ns) of directories a step creates on the way: the build's `created` timestamp, so
 * that the same step makes the same layer whenever it runs (and on every platform of a
 * multi-platform build, which share it). Reproducible builds clamp it further.
 */
function createdNs(sb: StageBuild): bigint {
  return BigInt(Date.parse(sb.env.created)) * 1_000_000n;
}
