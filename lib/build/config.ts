/**
 * The image config a stage builds up, and what each metadata instruction does to it, with
 * Docker's (BuildKit's) semantics: ENV replaces a key in place, CMD/ENTRYPOINT shell forms are
 * wrapped with SHELL, ENTRYPOINT drops a CMD inherited from the base image, WORKDIR is relative
 * to the previous one, EXPOSE ranges are expanded, HEALTHCHECK becomes a `Healthcheck` object.
 * @module
 */
import { KanikoError } from "../errors.ts";
import type { History, ImageConfig, RuntimeConfig } from "../oci/schemas.ts";
import { parseGoDuration } from "../dockerfile/value_rules.ts";

/** The default PATH BuildKit puts into an image that has none. */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The shell used for shell forms when SHELL was not set. */
export const DEFAULT_SHELL = ["/bin/sh", "-c"];

/** A stage's config under construction. */
export interface ConfigState {
  config: ImageConfig;
  /** True once the stage itself set CMD (an ENTRYPOINT then keeps it). */
  cmdSet: boolean;
}

/** A new config for `FROM scratch` (BuildKit: only a default PATH). */
export function scratchConfig(platform: { os: string; architecture: string; variant?: string }) {
  const config: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    config: { Env: [`PATH=${DEFAULT_PATH}`] },
    rootfs: { type: "layers", diff_ids: [] },
    history: [],
  };
  if (platform.variant) config.variant = platform.variant;
  return config;
}

/**
 * Starts a stage from its base image's (or base stage's) config (deep-copied); the platform
 * fields are kept. The base's ONBUILD triggers are not: the stage runs them (see the planner),
 * and its image holds only its own ONBUILD instructions, as with BuildKit.
 */
export function startState(base: ImageConfig): ConfigState {
  const config = structuredClone(base);
  config.config ??= {};
  delete config.config.OnBuild;
  const env = config.config.Env ?? [];
  if (!env.some((e) => e.startsWith("PATH="))) config.config.Env = [...env, `PATH=${DEFAULT_PATH}`];
  config.history ??= [];
  delete (config as Record<string, unknown>).container;
  delete (config as Record<string, unknown>).container_config;
  return { config, cmdSet: false };
}

/** The runtime part of the config, created when absent. */
function rc(state: ConfigState): RuntimeConfig {
  return state.config.config ??= {};
}

/** The `K=V` environment of the config. */
export function envOf(state: ConfigState): string[] {
  return rc(state).Env ?? [];
}

/** Sets environment variables, replacing existing keys in place (ENV). */
export function setEnv(state: ConfigState, pairs: Array<[string, string]>): void {
  const env = [...envOf(state)];
  for (const [key, value] of pairs) {
    const i = env.findIndex((e) => e.slice(0, e.indexOf("=")) === key);
    if (i >= 0) env[i] = `${key}=${value}`;
    else env.push(`${key}=${value}`);
  }
  rc(state).Env = env;
}

/** Merges labels (LABEL and `--label`). */
export function setLabels(state: ConfigState, pairs: Array<[string, string]>): void {
  const labels = { ...(rc(state).Labels ?? {}) };
  for (const [k, v] of pairs) labels[k] = v;
  rc(state).Labels = labels;
}

/** The shell in force (SHELL, else `/bin/sh -c`). */
export function shellOf(state: ConfigState): string[] {
  const shell = rc(state).Shell;
  return shell && shell.length ? shell : DEFAULT_SHELL;
}

/** A command of CMD / ENTRYPOINT / RUN: exec form as is, shell form wrapped with the shell. */
export function commandLine(state: ConfigState, args: string[], json: boolean): string[] {
  return json ? args : [...shellOf(state), args.join(" ")];
}

/** CMD. */
export function setCmd(state: ConfigState, args: string[], json: boolean): void {
  rc(state).Cmd = commandLine(state, args, json);
  state.cmdSet = true;
}

/** ENTRYPOINT: also drops a CMD inherited from the base image (not one set in this stage). */
export function setEntrypoint(state: ConfigState, args: string[], json: boolean): void {
  const r = rc(state);
  r.Entrypoint = json && args.length === 0 ? null : commandLine(state, args, json);
  if (!state.cmdSet) r.Cmd = null;
}

/** WORKDIR: relative to the previous working directory; returns the absolute path. */
export function setWorkdir(state: ConfigState, dir: string): string {
  const current = rc(state).WorkingDir || "/";
  const next = normalizeAbsolute(dir.startsWith("/") ? dir : `${current}/${dir}`);
  rc(state).WorkingDir = next;
  return next;
}

/** `/a/./b/../c/` → `/a/c` (no filesystem access). */
export function normalizeAbsolute(path: string): string {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return "/" + out.join("/");
}

/** EXPOSE: `80`, `80/udp`, `8000-8002/tcp` → `ExposedPorts` keys. */
export function expose(state: ConfigState, specs: string[]): void {
  const ports = { ...(rc(state).ExposedPorts ?? {}) };
  for (const spec of specs) {
    const [range, proto = "tcp"] = spec.split("/");
    const [lo, hi = lo] = range.split("-").map((n) => Number(n));
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi < lo) {
      throw new KanikoError(`invalid port "${spec}"`);
    }
    for (let p = lo; p <= hi; p++) ports[`${p}/${proto.toLowerCase()}`] = {};
  }
  rc(state).ExposedPorts = ports;
}

/** VOLUME. */
export function addVolumes(state: ConfigState, paths: string[]): void {
  const volumes = { ...(rc(state).Volumes ?? {}) };
  for (const p of paths) if (p) volumes[p] = {};
  rc(state).Volumes = volumes;
}

/** USER. */
export function setUser(state: ConfigState, user: string): void {
  rc(state).User = user;
}

/** STOPSIGNAL. */
export function setStopSignal(state: ConfigState, signal: string): void {
  rc(state).StopSignal = signal;
}

/** SHELL. */
export function setShell(state: ConfigState, shell: string[]): void {
  rc(state).Shell = shell;
}

/** ONBUILD: stores the trigger text (`RUN echo hi`). */
export function addOnBuild(state: ConfigState, trigger: string): void {
  rc(state).OnBuild = [...(rc(state).OnBuild ?? []), trigger];
}

/** MAINTAINER. */
export function setAuthor(state: ConfigState, author: string): void {
  state.config.author = author;
}

/** HEALTHCHECK [options] CMD … | NONE (the flags were validated by the parser). */
export function setHealthcheck(
  state: ConfigState,
  args: string[],
  flags: string[],
  json: boolean,
): void {
  if (args[0]?.toUpperCase() === "NONE") {
    rc(state).Healthcheck = { Test: ["NONE"] };
    return;
  }
  const get = (name: string) => flagValue(flags, name);
  const test = json ? ["CMD", ...args.slice(1)] : ["CMD-SHELL", args.slice(1).join(" ")];
  const health: Record<string, unknown> = { Test: test };
  for (const [flag, key] of HEALTH_DURATIONS) {
    const v = get(flag);
    if (v !== undefined) {
      const ns = parseGoDuration(v);
      if (ns === null) throw new KanikoError(`HEALTHCHECK: invalid --${flag} "${v}"`);
      if (ns !== 0) health[key] = ns;
    }
  }
  const retries = get("retries");
  if (retries !== undefined && Number(retries) !== 0) health.Retries = Number(retries);
  rc(state).Healthcheck = health;
}

const HEALTH_DURATIONS: Array<[string, string]> = [
  ["interval", "Interval"],
  ["timeout", "Timeout"],
  ["start-period", "StartPeriod"],
  ["start-interval", "StartInterval"],
];

function flagValue(flags: string[], name: string): string | undefined {
  let value: string | undefined;
  for (const f of flags) {
    const m = f.match(/^--([^=]+)=(.*)$/s);
    if (m && m[1] === name) value = m[2];
  }
  return value;
}

/** Appends a history entry (`empty_layer` for metadata-only steps). */
export function addHistory(
  state: ConfigState,
  entry: { createdBy: string; emptyLayer: boolean; created?: string; comment?: string },
): void {
  const h: History = { created_by: entry.createdBy };
  if (entry.created) h.created = entry.created;
  if (entry.comment) h.comment = entry.comment;
  if (entry.emptyLayer) h.empty_layer = true;
  state.config.history = [...(state.config.history ?? []), h];
}
