/**
 * The integration test bed: four docker-registry instances (plain HTTP, TLS, TLS + htpasswd
 * Basic, HTTP + Bearer token via scripts/token_server.ts) on free 127.0.0.1 ports, with offline
 * multi-arch busybox images pushed to each by our own `cli.ts copy`.
 *
 *   deno run -A scripts/testbed.ts start         # idempotent: reuses what runs, starts the rest
 *   deno run -A scripts/testbed.ts status        # what runs (exit 1 when not everything does)
 *   deno run -A scripts/testbed.ts env [--json]  # print env.sh (or env.json)
 *   deno run -A scripts/testbed.ts stop [--clean|--purge]
 *
 * State lives in `$TESTBED_DIR` (default `<repo>/.testbed`): pki/, certs.d/, auth/, docker/,
 * token/, registries/<name>/{config.yml,storage/}, run/ (pid, port, spec files), log/, debs/
 * (cached .debs), apt/ (private apt state), oci/ (the busybox layout), env.json and env.sh.
 * `stop` ends only the pids of its own pid files whose cmdline matches; `--clean` also removes
 * the state except the .deb cache (debs/, apt/), `--purge` removes all of it.
 * Environment: `TESTBED_DIR`, `TESTBED_TOKEN_TTL` (default token lifetime, 300 s).
 * @module
 */
import { join } from "node:path";
import {
  BUSYBOX_REPO,
  envJsonPath,
  envSh,
  PASS,
  readEnv,
  type RegistryInfo,
  stateDir,
  type TestbedEnv,
  TestbedEnvSchema,
  TOKEN_ISSUER,
  TOKEN_SERVICE,
  USER,
  type Variant,
  VARIANTS,
} from "./testbed/env.ts";
import { ensureHtpasswd, ensurePackages, ensurePki, writeDockerConfig } from "./testbed/setup.ts";
import {
  ensureRegistry,
  ensureTokenServer,
  SERVICE_NAMES,
  serviceFiles,
  standardSpecs,
} from "./testbed/registries.ts";
import { buildBusyboxLayout, ensureDebs } from "./testbed/busybox.ts";
import { pushBusybox, pushedTags } from "./testbed/push.ts";
import { livePid, stopService, withLock } from "./testbed/proc.ts";
import { exists } from "./testbed/fs.ts";

function log(s: string): void {
  console.error(`testbed: ${s}`);
}

/** Result of {@link start}. */
export interface StartResult {
  env: TestbedEnv;
  /** Services this call started (empty when everything was already running). */
  started: string[];
  ms: number;
}

/** Starts (or reuses) everything and writes env.json / env.sh. Safe to run concurrently. */
export async function start(dir: string = stateDir()): Promise<StartResult> {
  const t0 = Date.now();
  return await withLock(dir, async () => {
    const before = new Set(
      SERVICE_NAMES.filter((n) => livePid(serviceFiles(dir, n)) !== undefined),
    );
    await ensurePackages(log);
    const pki = await ensurePki(dir, log);
    const htpasswd = await ensureHtpasswd(dir);
    // The .debs and the image build do not depend on the services: overlap them.
    const buildP = (async () => {
      const debs = await ensureDebs(join(dir, "debs"), join(dir, "apt"), log);
      return await buildBusyboxLayout({
        debs,
        layoutDir: join(dir, "oci"),
        workDir: join(dir, "build"),
        log,
      });
    })();
    buildP.catch(() => {}); // awaited below; avoid an unhandled rejection meanwhile
    const token = await ensureTokenServer(dir, pki, log);
    const specs = standardSpecs(token.realm);
    const regs = await Promise.all(
      VARIANTS.map((v) => ensureRegistry(dir, specs[v], pki, htpasswd, log)),
    );
    const registries = Object.fromEntries(VARIANTS.map((v, i) => [v, regs[i]])) as Record<
      Variant,
      RegistryInfo
    >;
    const dockerConfigDir = await writeDockerConfig(dir, [
      registries.basic.host,
      registries.token.host,
    ]);
    const build = await buildP;
    const layout = join(dir, "oci");
    const http = { registries, ca: pki.ca, user: USER, pass: PASS };
    const ctx = {
      ca: pki.ca,
      certDir: pki.certDir,
      dockerConfigDir,
      authFile: join(dockerConfigDir, "config.json"),
    };
    await Promise.all(VARIANTS.map((v) => pushBusybox(http, v, ctx, layout, build, log)));
    const env: TestbedEnv = TestbedEnvSchema.parse({
      version: 1,
      stateDir: dir,
      registries,
      tokenServer: {
        url: token.url,
        realm: token.realm,
        service: TOKEN_SERVICE,
        issuer: TOKEN_ISSUER,
        ttl: token.ttl,
        pid: token.pid,
        log: token.log,
        cert: pki.tokenCert,
        key: pki.tokenKey,
        config: token.config,
      },
      ca: pki.ca,
      certDir: pki.certDir,
      serverCert: pki.serverCert,
      serverKey: pki.serverKey,
      clientCa: pki.clientCa,
      clientCert: pki.clientCert,
      clientKey: pki.clientKey,
      htpasswd,
      dockerConfigDir,
      authFile: ctx.authFile,
      user: USER,
      pass: PASS,
      busybox: {
        repository: BUSYBOX_REPO,
        indexDigest: build.indexDigest,
        dockerListDigest: build.dockerListDigest,
        tags: pushedTags(build),
        arches: build.arches,
      },
      ociLayout: layout,
      debsDir: join(dir, "debs"),
    });
    await atomicWrite(envJsonPath(dir), JSON.stringify(env, null, 2) + "\n");
    await atomicWrite(join(dir, "env.sh"), envSh(env));
    const started = SERVICE_NAMES.filter((n) => !before.has(n));
    return { env, started, ms: Date.now() - t0 };
  });
}

async function atomicWrite(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path);
}

/** Which services run: name → pid (undefined when not running). */
export function status(dir: string = stateDir()): Record<string, number | undefined> {
  return Object.fromEntries(SERVICE_NAMES.map((n) => [n, livePid(serviceFiles(dir, n))]));
}

/** True when every service runs and env.json exists. */
export function isRunning(dir: string = stateDir()): boolean {
  if (!exists(envJsonPath(dir))) return false;
  return Object.values(status(dir)).every((p) => p !== undefined);
}

/** What `--clean` removes (everything of ours but the .deb cache and the private apt state). */
const CLEAN_PATHS = [
  "env.json",
  "env.sh",
  "run",
  "log",
  "registries",
  "token",
  "oci",
  "oci.build.json",
  "build",
  "docker",
  "auth",
  "pki",
  "certs.d",
  ".lock",
];

/** Stops our services (only pids from our pid files whose cmdline matches). */
export async function stop(
  dir: string = stateDir(),
  opts: { clean?: boolean; purge?: boolean } = {},
): Promise<string[]> {
  const stopped: string[] = [];
  for (const n of SERVICE_NAMES) {
    const pid = await stopService(serviceFiles(dir, n));
    if (pid !== undefined) stopped.push(`${n} (pid ${pid})`);
  }
  if (opts.clean || opts.purge) {
    const paths = opts.purge ? [...CLEAN_PATHS, "debs", "apt"] : CLEAN_PATHS;
    for (const p of paths) await Deno.remove(join(dir, p), { recursive: true }).catch(() => {});
    if (opts.purge) await Deno.remove(dir).catch(() => {}); // only if now empty
  }
  return stopped;
}

async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  const dir = stateDir();
  switch (cmd) {
    case "start": {
      const r = await start(dir);
      log(
        `ready in ${(r.ms / 1000).toFixed(1)} s` +
          (r.started.length ? ` (started ${r.started.join(", ")})` : " (all reused)"),
      );
      for (const v of VARIANTS) log(`  ${v.padEnd(6)} ${r.env.registries[v].url}`);
      log(`  index ${r.env.busybox.indexDigest}`);
      log(`  env: ${join(dir, "env.json")}, . ${join(dir, "env.sh")}`);
      return 0;
    }
    case "stop": {
      const stopped = await stop(dir, {
        clean: rest.includes("--clean"),
        purge: rest.includes("--purge"),
      });
      log(stopped.length ? `stopped ${stopped.join(", ")}` : "nothing of ours was running");
      return 0;
    }
    case "status": {
      const s = status(dir);
      for (const [n, pid] of Object.entries(s)) {
        console.log(`${n.padEnd(13)} ${pid === undefined ? "stopped" : `running (pid ${pid})`}`);
      }
      return Object.values(s).every((p) => p !== undefined) ? 0 : 1;
    }
    case "env": {
      const env = await readEnv(dir);
      console.log(rest.includes("--json") ? JSON.stringify(env, null, 2) : envSh(env).trimEnd());
      return 0;
    }
    default:
      console.error(
        "usage: deno run -A scripts/testbed.ts start|stop [--clean|--purge]|status|env [--json]",
      );
      return 2;
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`testbed: error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
