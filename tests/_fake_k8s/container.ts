/**
 * Turning a pod's container spec into a local process on a simulated node, and reading back its
 * termination message.
 *
 * Adaptations (the simulated node is this machine, not a container):
 * - **Volumes**: each `secret` volume's items (base64 `data` decoded; `items` or every key,
 *   with `defaultMode`/`mode`) are written into a per-pod temp dir, and each `emptyDir` is a
 *   fresh temp dir. There is no mount namespace, so every argument and env value that *starts*
 *   with a mount path (or has it right after `=`, `,`, `dir://` or `tar://`, as in
 *   `--flag=/path`, `HOST=/path` or `--context=dir:///workspace`) is rewritten to that dir.
 * - **Termination message**: the container's `terminationMessagePath` (`/dev/termination-log`)
 *   is rewritten the same way to a per-pod file; after exit its first 4096 bytes become
 *   `state.terminated.message` (with `FallbackToLogsOnError` and an empty file after a failure:
 *   the log's last 80 lines, at most 2048 bytes), as the kubelet does.
 * - **Executor**: the image's entrypoint (or `command[0]`, e.g. `/kaniko/executor`) is replaced
 *   by the node's executor argv (default `deno run -A <repo>/cli.ts`); `command[1..]` and `args`
 *   follow.
 * - **Work dir**: `KANIKO_DIR` is set to a per-pod dir (a real container has its own
 *   `/kaniko`; pods on one simulated node share the host's).
 * - **Isolation**: with the default executor, `--isolation=chroot` is appended unless an
 *   `--isolation` flag is present, because the "node" is the host itself; a real executor
 *   container would run with `none` (its own container is the build root).
 * @module
 */
import { join } from "node:path";
import type { KObject } from "./store.ts";

/** Why a container cannot start yet (kubelet waiting reasons). */
export class StartError extends Error {
  constructor(
    readonly reason: "ContainerCreating" | "CreateContainerConfigError",
    message: string,
  ) {
    super(message);
  }
}

/** A container ready to spawn. */
export interface PreparedContainer {
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  /** The local file that stands for `terminationMessagePath`. */
  terminationFile: string;
}

/** Options of {@link prepareContainer}. */
export interface PrepareOptions {
  /** Replaces the image entrypoint / `command[0]`. */
  executor: string[];
  /** Append `--isolation=chroot` when no `--isolation` flag is given. */
  appendIsolation: boolean;
  /** Per-pod scratch dir (volumes, termination file, cwd). */
  podDir: string;
  /** Looks a Secret up (undefined when missing). */
  secret(name: string): KObject | undefined;
}

function decode(b64: string): Uint8Array {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Rewrites mount paths at the start of `s` or right after `=`, `,`, `dir://` or `tar://`
 * (longest first).
 */
export function rewriter(mounts: Map<string, string>): (s: string) => string {
  const list = [...mounts].sort((a, b) => b[0].length - a[0].length);
  return (s) => {
    for (const [from, to] of list) {
      const re = new RegExp(
        `(^|[=,]|dir://|tar://)${escape(from.replace(/\/$/, ""))}(?=/|$|,)`,
        "g",
      );
      s = s.replace(re, (_m, pre: string) => pre + to);
    }
    return s;
  };
}

// deno-lint-ignore no-explicit-any
async function writeSecretVolume(dir: string, vol: any, secret: KObject): Promise<void> {
  const data: Record<string, string> = secret.data ?? {};
  const items: { key: string; path: string; mode?: number }[] = vol.secret.items ??
    Object.keys(data).map((k) => ({ key: k, path: k }));
  for (const it of items) {
    if (!(it.key in data)) {
      throw new StartError(
        "ContainerCreating",
        `MountVolume.SetUp failed for volume "${vol.name}" : ` +
          `references non-existent secret key: ${it.key}`,
      );
    }
    const file = join(dir, it.path);
    await Deno.mkdir(join(file, ".."), { recursive: true });
    await Deno.writeFile(file, decode(data[it.key]), {
      mode: it.mode ?? vol.secret.defaultMode ?? 0o644,
    });
  }
}

// deno-lint-ignore no-explicit-any
async function mountVolumes(
  pod: KObject,
  c: any,
  opts: PrepareOptions,
): Promise<Map<string, string>> {
  const mounts = new Map<string, string>();
  // deno-lint-ignore no-explicit-any
  const volumes = new Map<string, any>((pod.spec.volumes ?? []).map((v: any) => [v.name, v]));
  for (const m of c.volumeMounts ?? []) {
    const vol = volumes.get(m.name);
    const dir = join(opts.podDir, "volumes", m.name);
    await Deno.mkdir(dir, { recursive: true });
    if (vol?.secret) {
      const secret = opts.secret(vol.secret.secretName);
      if (!secret && !vol.secret.optional) {
        throw new StartError(
          "ContainerCreating",
          `MountVolume.SetUp failed for volume "${m.name}" : ` +
            `secret "${vol.secret.secretName}" not found`,
        );
      }
      if (secret) await writeSecretVolume(dir, vol, secret);
    }
    mounts.set(m.mountPath, m.subPath ? join(dir, m.subPath) : dir);
  }
  return mounts;
}

// deno-lint-ignore no-explicit-any
function containerEnv(pod: KObject, c: any, opts: PrepareOptions, rw: (s: string) => string) {
  const env: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    HOSTNAME: pod.metadata.name,
    HOME: Deno.env.get("HOME") ?? "/root",
    NO_COLOR: "1",
    // each container has its own /kaniko; here: a per-pod dir (the container env may override)
    KANIKO_DIR: join(opts.podDir, "kaniko"),
  };
  const denoDir = Deno.env.get("DENO_DIR");
  if (denoDir) env.DENO_DIR = denoDir;
  for (const e of c.env ?? []) {
    const ref = e.valueFrom?.secretKeyRef;
    if (!ref) {
      env[e.name] = rw(e.value ?? "");
      continue;
    }
    const secret = opts.secret(ref.name);
    if (!secret) {
      if (ref.optional) continue;
      throw new StartError("CreateContainerConfigError", `secret "${ref.name}" not found`);
    }
    const v = secret.data?.[ref.key];
    if (v === undefined) {
      if (ref.optional) continue;
      throw new StartError(
        "CreateContainerConfigError",
        `couldn't find key ${ref.key} in Secret ${pod.metadata.namespace}/${ref.name}`,
      );
    }
    env[e.name] = new TextDecoder().decode(decode(v));
  }
  return env;
}

/** Prepares volumes, env and argv of a pod's first container (throws {@link StartError}). */
export async function prepareContainer(
  pod: KObject,
  opts: PrepareOptions,
): Promise<PreparedContainer> {
  const c = pod.spec.containers[0];
  const mounts = await mountVolumes(pod, c, opts);
  const terminationFile = join(opts.podDir, "termination-log");
  await Deno.writeFile(terminationFile, new Uint8Array());
  mounts.set(c.terminationMessagePath ?? "/dev/termination-log", terminationFile);
  const rw = rewriter(mounts);
  const env = containerEnv(pod, c, opts, rw);
  const args: string[] = [...(c.command ?? []).slice(1), ...(c.args ?? [])].map(rw);
  if (opts.appendIsolation && !args.some((a) => /^--isolation(=|$)/.test(a))) {
    args.push("--isolation=chroot");
  }
  const cwd = c.workingDir ? rw(c.workingDir) : opts.podDir;
  await Deno.mkdir(cwd, { recursive: true }).catch(() => {});
  return { argv: [...opts.executor, ...args], env, cwd, terminationFile };
}

/** Kubelet's limits on termination messages. */
export const MAX_MESSAGE = 4096;
const MAX_LOG_MESSAGE = 2048;
const MAX_LOG_LINES = 80;

/** The terminated state's `message`: the file, or the log's tail under FallbackToLogsOnError. */
export async function terminationMessage(
  file: string,
  policy: string,
  exitCode: number,
  log: string,
): Promise<string> {
  let bytes = await Deno.readFile(file).catch(() => new Uint8Array());
  if (bytes.length > MAX_MESSAGE) bytes = bytes.slice(0, MAX_MESSAGE);
  const msg = new TextDecoder().decode(bytes);
  if (msg || policy !== "FallbackToLogsOnError" || exitCode === 0) return msg;
  const lines = log.replace(/\n$/, "").split("\n").slice(-MAX_LOG_LINES).join("\n");
  const enc = new TextEncoder().encode(lines);
  return new TextDecoder().decode(enc.slice(Math.max(0, enc.length - MAX_LOG_MESSAGE)));
}
