/**
 * Test helper for integration tests: the running test bed ({@link testbed}), skopeo with the
 * right flags per registry ({@link skopeo}), authenticated raw requests ({@link regFetch}), our
 * CLI's registry flags, extra short-lived registries ({@link startExtraRegistry}) and temp dirs.
 *
 * ```ts
 * const env = await testbed();
 * const r = await skopeo(["inspect", "--raw", `docker://${ref(env, "basic", "library/busybox:latest")}`], { env, variant: "basic" });
 * ```
 * @module
 */
import { join } from "node:path";
import {
  readEnv,
  type RegistryInfo,
  REPO_ROOT,
  stateDir,
  type TestbedEnv,
  type Variant,
  VARIANTS,
} from "../scripts/testbed/env.ts";
import { isRunning } from "../scripts/testbed.ts";
import {
  fetchAll,
  type FetchResult,
  fetchToken,
  MANIFEST_ACCEPT,
  manifestDigest,
  parseChallenge,
  registryFetch,
  type RegistryFetchOptions,
} from "../scripts/testbed/http.ts";
import { cliRegistryFlags } from "../scripts/testbed/push.ts";
import { ensureRegistry, type RegistrySpec, serviceFiles } from "../scripts/testbed/registries.ts";
import { pkiPaths } from "../scripts/testbed/setup.ts";
import { run, type RunResult, stopService } from "../scripts/testbed/proc.ts";

export type { FetchResult, RegistryInfo, TestbedEnv, Variant };
export { fetchAll, fetchToken, MANIFEST_ACCEPT, parseChallenge, VARIANTS };

let cached: Promise<TestbedEnv> | undefined;

/**
 * The test bed's env.json (zod-validated), from `$TESTBED_DIR` or `<repo>/.testbed`. When the test
 * bed is not running (no env.json, or a service is down) it is started with
 * `deno run -A scripts/testbed.ts start`, which holds a lock on the state dir, so parallel test
 * files do not race. When `$TESTBED_UNAVAILABLE` is set (scripts/test.ts could not start it, or
 * `--no-testbed`), it fails at once with that reason. A test bed started this way keeps running (stop it with
 * `deno run -A scripts/testbed.ts stop`; `deno task test` stops what it started).
 */
export function testbed(): Promise<TestbedEnv> {
  cached ??= (async () => {
    const unavailable = Deno.env.get("TESTBED_UNAVAILABLE");
    if (unavailable) throw new Error(`the test bed is unavailable: ${unavailable}`);
    const dir = stateDir();
    if (!isRunning(dir)) {
      const r = await run(Deno.execPath(), [
        "run",
        "-A",
        join(REPO_ROOT, "scripts", "testbed.ts"),
        "start",
      ], {
        cwd: REPO_ROOT,
        allowFail: true,
      });
      if (r.code !== 0) throw new Error(`could not start the test bed:\n${r.stderr.trim()}`);
    }
    return await readEnv(dir);
  })();
  cached.catch(() => (cached = undefined));
  return cached;
}

/** A registry: one of the four by name, or an extra one ({@link startExtraRegistry}). */
export type RegistryRef = Variant | RegistryInfo;

function reg(env: TestbedEnv, r: RegistryRef): RegistryInfo {
  return typeof r === "string" ? env.registries[r] : r;
}

/** `HOST/REPO[:TAG|@DIGEST]` on a test-bed registry. */
export function ref(env: TestbedEnv, registry: RegistryRef, repoAndTag: string): string {
  return `${reg(env, registry).host}/${repoAndTag}`;
}

/** Options of {@link skopeo}. */
export interface SkopeoOptions {
  env: TestbedEnv;
  /** Registry the command talks to (`inspect`, `delete`, `list-tags`…): plain flags. */
  variant?: RegistryRef;
  /** For `copy`/`sync`: the source registry (`--src-*` flags). */
  src?: RegistryRef;
  /** For `copy`/`sync`: the destination registry (`--dest-*` flags). */
  dest?: RegistryRef;
  /** Use credentials (default true); false gives anonymous access (`--no-creds`). */
  creds?: boolean;
}

/** The skopeo flags to reach a registry variant (`prefix` `src-`/`dest-` for copy). */
export function skopeoFlags(
  env: TestbedEnv,
  registry: RegistryRef,
  prefix = "",
  creds = true,
): string[] {
  const r = reg(env, registry);
  const flags = r.tls ? [`--${prefix}cert-dir=${env.certDir}`] : [`--${prefix}tls-verify=false`];
  if (r.auth !== "none") {
    flags.push(creds ? `--${prefix}authfile=${env.authFile}` : `--${prefix}no-creds`);
  }
  return flags;
}

/**
 * Runs `skopeo ARGS` with the flags for the given registries inserted after the subcommand;
 * returns exit code and output (never throws on a non-zero exit).
 */
export async function skopeo(args: string[], opts: SkopeoOptions): Promise<RunResult> {
  const creds = opts.creds ?? true;
  const flags: string[] = [];
  if (opts.variant) flags.push(...skopeoFlags(opts.env, opts.variant, "", creds));
  if (opts.src) flags.push(...skopeoFlags(opts.env, opts.src, "src-", creds));
  if (opts.dest) flags.push(...skopeoFlags(opts.env, opts.dest, "dest-", creds));
  const [sub, ...rest] = args;
  return await run("skopeo", [sub, ...flags, ...rest], {
    allowFail: true,
    env: { XDG_RUNTIME_DIR: join(opts.env.stateDir, "run") },
  });
}

/**
 * A raw request to a test-bed registry with the auth its variant needs (Basic, or a token from
 * the token server), e.g. `regFetch(env, "token", "/v2/_catalog", {scope: "registry:catalog:*"})`.
 * `creds: false` makes the request (and the token fetch) anonymous.
 */
export function regFetch(
  env: TestbedEnv,
  registry: RegistryRef,
  path: string,
  opts: RegistryFetchOptions = {},
): Promise<FetchResult> {
  return registryFetch({ ...env, registries: { r: reg(env, registry) } }, "r", path, opts);
}

/** The digest a registry serves for `repo:ref` (HEAD), or undefined. */
export function remoteDigest(
  env: TestbedEnv,
  registry: RegistryRef,
  repo: string,
  reference: string,
): Promise<string | undefined> {
  return manifestDigest({ ...env, registries: { r: reg(env, registry) } }, "r", repo, reference);
}

/**
 * Our CLI's registry flags for a variant (`--insecure-registry` or `--registry-certificate`);
 * run the CLI with `DOCKER_CONFIG=env.dockerConfigDir` for the credentials.
 */
export function cliFlags(env: TestbedEnv, registry: RegistryRef): string[] {
  return cliRegistryFlags(reg(env, registry), env.ca);
}

/** A temp dir removed on dispose: `await using tmp = await tempDir(); tmp.path`. */
export interface TempDir extends AsyncDisposable {
  path: string;
}

/** Creates a temp dir (removed with its contents when disposed). */
export async function tempDir(prefix = "kaniko-test-"): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

/** An extra registry owned by one test. */
export interface ExtraRegistry extends AsyncDisposable {
  info: RegistryInfo;
  stop(): Promise<void>;
}

/** Options of {@link startExtraRegistry}. */
export interface ExtraRegistryOptions {
  tls?: boolean;
  auth?: "none" | "basic" | "token";
  /** Token lifetime for auth "token" (realm `/ttl/N/token`); distribution adds 60 s leeway. */
  tokenTtl?: number;
  /** Require client certificates signed by the test bed's client CA (needs tls). */
  mtls?: boolean;
}

/**
 * Starts a private docker-registry for one test (own storage in a temp dir, free port, the test
 * bed's certificates, htpasswd and token server), e.g. a token registry whose tokens expire
 * quickly. Stop it with `await using r = await startExtraRegistry(env, {...})` or `r.stop()`.
 */
export async function startExtraRegistry(
  env: TestbedEnv,
  opts: ExtraRegistryOptions = {},
): Promise<ExtraRegistry> {
  const dir = await Deno.makeTempDir({ prefix: "testbed-extra-" });
  const auth = opts.auth ?? "none";
  const spec: RegistrySpec = {
    name: "extra",
    tls: opts.tls ?? false,
    auth,
    realm: auth === "token"
      ? opts.tokenTtl === undefined
        ? env.tokenServer.realm
        : `${env.tokenServer.url}/ttl/${opts.tokenTtl}/token`
      : undefined,
    clientCas: opts.mtls ? env.clientCa : undefined,
  };
  const pki = pkiPaths(env.stateDir);
  let info: RegistryInfo;
  try {
    info = await ensureRegistry(dir, spec, pki, env.htpasswd, () => {});
  } catch (e) {
    await stopService(serviceFiles(dir, "extra"));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
  const stop = async () => {
    await stopService(serviceFiles(dir, "extra"));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  return { info, stop, [Symbol.asyncDispose]: stop };
}
