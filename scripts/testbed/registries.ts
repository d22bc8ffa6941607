/**
 * The test bed's services: the token server (scripts/token_server.ts) and docker-registry
 * instances, each detached with a pid file, a log and a recorded "spec" (argv + config). A running
 * instance whose spec is unchanged is reused; one whose spec changed is restarted (it is ours).
 * @module
 */
import { join } from "node:path";
import {
  BASIC_REALM,
  PASS,
  type RegistryInfo,
  REPO_ROOT,
  TOKEN_ISSUER,
  TOKEN_SERVICE,
  USER,
  type Variant,
} from "./env.ts";
import type { Pki } from "./setup.ts";
import { fetchAll } from "./http.ts";
import {
  freePort,
  isAlive,
  livePid,
  logTail,
  portInUse,
  type ServiceRef,
  sleep,
  spawnDetached,
  stopService,
} from "./proc.ts";

/** Files of one service under `<state>/run` and `<state>/log`. */
export interface ServiceFiles extends ServiceRef {
  name: string;
  logFile: string;
  portFile: string;
  specFile: string;
}

/** Names of every service the test bed starts (stop order: registries first). */
export const SERVICE_NAMES = ["plain", "tls", "basic", "token", "token-server"] as const;

/** The docker-registry config path of a variant (also the cmdline marker). */
export function registryConfigPath(state: string, name: string): string {
  return join(state, "registries", name, "config.yml");
}

const TOKEN_SERVER_SCRIPT = join(REPO_ROOT, "scripts", "token_server.ts");

/** The files and cmdline markers of a service. */
export function serviceFiles(state: string, name: string): ServiceFiles {
  const run = join(state, "run");
  const markers = name === "token-server"
    ? [TOKEN_SERVER_SCRIPT, join(state, "token", "config.json")]
    : ["serve", registryConfigPath(state, name)];
  return {
    name,
    pidFile: join(run, `${name}.pid`),
    portFile: join(run, `${name}.port`),
    specFile: join(run, `${name}.spec`),
    logFile: join(state, "log", `${name}.log`),
    markers,
  };
}

function readPort(path: string): number | undefined {
  try {
    const n = Number(Deno.readTextFileSync(path).trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

/** Ports handed out by this process, so concurrent starts never pick the same one. */
const handedOut = new Set<number>();

function freshPort(): number {
  for (;;) {
    const p = freePort();
    if (!handedOut.has(p)) {
      handedOut.add(p);
      return p;
    }
  }
}

function fileSize(path: string): number {
  try {
    return Deno.statSync(path).size;
  } catch {
    return 0;
  }
}

/** The log text written since byte `offset`. */
function logSince(path: string, offset: number): string {
  try {
    return new TextDecoder().decode(Deno.readFileSync(path).subarray(offset));
  } catch {
    return "";
  }
}

/** Waits until the log (from `offset`) contains `needle`, while `pid` lives. */
async function waitLog(path: string, offset: number, needle: string, pid: number, what: string) {
  const end = Date.now() + 20_000;
  for (;;) {
    const text = logSince(path, offset);
    if (text.includes(needle)) return;
    if (!isAlive(pid)) {
      throw new Error(`${what} exited:\n${text.trim().split("\n").slice(-8).join("\n")}`);
    }
    if (Date.now() > end) throw new Error(`${what} did not start:\n${logTail(path)}`);
    await sleep(25);
  }
}

/** Result of starting (or reusing) the token server. */
export interface TokenServerInfo {
  url: string;
  realm: string;
  pid: number;
  port: number;
  log: string;
  config: string;
  ttl: number;
}

/** Default token lifetime (seconds); `$TESTBED_TOKEN_TTL` overrides it. */
export function defaultTokenTtl(): number {
  const v = Number(Deno.env.get("TESTBED_TOKEN_TTL") ?? "300");
  return Number.isInteger(v) ? v : 300;
}

/** Starts the token server unless ours runs with the same spec. */
export async function ensureTokenServer(
  state: string,
  pki: Pki,
  log: (s: string) => void,
): Promise<TokenServerInfo> {
  const f = serviceFiles(state, "token-server");
  const ttl = defaultTokenTtl();
  const configPath = join(state, "token", "config.json");
  await Deno.mkdir(join(state, "token"), { recursive: true });
  const config = JSON.stringify(
    {
      key: pki.tokenKey,
      cert: pki.tokenCert,
      issuer: TOKEN_ISSUER,
      service: TOKEN_SERVICE,
      users: { [USER]: PASS },
      ttl,
    },
    null,
    2,
  ) + "\n";
  const spec = JSON.stringify({ config, cert: readText(pki.tokenCert) });
  const argv = [
    Deno.execPath(),
    "run",
    "-A",
    "--quiet",
    TOKEN_SERVER_SCRIPT,
    "--config",
    configPath,
    "--port-file",
    f.portFile,
  ];
  let pid = livePid(f);
  let port = readPort(f.portFile);
  if (pid !== undefined && (readText(f.specFile) !== spec || port === undefined)) {
    log("token server config changed; restarting it");
    await stopService(f);
    pid = undefined;
  }
  if (pid === undefined) {
    await Deno.writeTextFile(configPath, config, { mode: 0o600 });
    await Deno.remove(f.portFile).catch(() => {});
    pid = await spawnDetached(argv, { pidFile: f.pidFile, logFile: f.logFile, cwd: REPO_ROOT });
    await Deno.writeTextFile(f.specFile, spec);
    const end = Date.now() + 30_000;
    for (;;) {
      port = readPort(f.portFile);
      if (port !== undefined) break;
      if (!isAlive(pid)) throw new Error(`token server exited:\n${logTail(f.logFile)}`);
      if (Date.now() > end) throw new Error(`token server did not start:\n${logTail(f.logFile)}`);
      await sleep(50);
    }
    log(`token server on 127.0.0.1:${port} (pid ${pid})`);
  }
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(`${url}/healthz`, pid!, f.logFile, "token server");
  return {
    url,
    realm: `${url}/token`,
    pid: pid!,
    port: port!,
    log: f.logFile,
    config: configPath,
    ttl,
  };
}

/** Options of a registry instance. */
export interface RegistrySpec {
  name: string;
  tls: boolean;
  auth: "none" | "basic" | "token";
  /** Token realm (auth "token"). */
  realm?: string;
  /** PEM bundle of CAs whose client certificates are required (mTLS). */
  clientCas?: string;
}

/** The docker-registry config (JSON, which is valid YAML) of a registry instance. */
export function registryConfig(
  state: string,
  spec: RegistrySpec,
  port: number,
  pki: Pki,
  htpasswd: string,
): string {
  const http: Record<string, unknown> = {
    addr: `127.0.0.1:${port}`,
    secret: `testbed-${spec.name}-secret`,
    headers: { "X-Content-Type-Options": ["nosniff"] },
  };
  if (spec.tls) {
    http.tls = {
      certificate: pki.serverCert,
      key: pki.serverKey,
      ...(spec.clientCas ? { clientcas: [spec.clientCas] } : {}),
    };
  }
  let auth: Record<string, unknown> | undefined;
  if (spec.auth === "basic") auth = { htpasswd: { realm: BASIC_REALM, path: htpasswd } };
  if (spec.auth === "token") {
    auth = {
      token: {
        realm: spec.realm,
        service: TOKEN_SERVICE,
        issuer: TOKEN_ISSUER,
        rootcertbundle: pki.tokenCert,
      },
    };
  }
  const config = {
    version: "0.1",
    log: { level: "info", formatter: "text", fields: { service: `testbed-${spec.name}` } },
    storage: {
      filesystem: { rootdirectory: join(state, "registries", spec.name, "storage") },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
      redirect: { disable: true },
    },
    http,
    ...(auth ? { auth } : {}),
    health: { storagedriver: { enabled: false } },
  };
  return JSON.stringify(config, null, 2) + "\n";
}

/**
 * Waits until `url` answers HTTP at all (any status), while `pid` lives. With `tcpOnly` (a
 * registry that demands client certificates) an open port is enough.
 */
async function waitHttp(
  url: string,
  pid: number,
  logFile: string,
  what: string,
  ca?: string,
  tcpOnly = false,
) {
  const end = Date.now() + 20_000;
  for (;;) {
    try {
      if (tcpOnly) {
        if (await portInUse(Number(new URL(url).port))) return;
      } else {
        await fetchAll(url, {}, ca);
        return;
      }
    } catch {
      // not up yet
    }
    if (!isAlive(pid)) throw new Error(`${what} exited:\n${logTail(logFile)}`);
    if (Date.now() > end) throw new Error(`${what} did not answer ${url}:\n${logTail(logFile)}`);
    await sleep(40);
  }
}

/**
 * Starts the registry `spec.name` unless ours runs with the same config; picks a free port (the
 * previous one if still free), retrying when the port was taken in between.
 */
export async function ensureRegistry(
  state: string,
  spec: RegistrySpec,
  pki: Pki,
  htpasswd: string,
  log: (s: string) => void,
): Promise<RegistryInfo> {
  const f = serviceFiles(state, spec.name);
  const configPath = registryConfigPath(state, spec.name);
  await Deno.mkdir(join(state, "registries", spec.name, "storage"), { recursive: true });
  await Deno.mkdir(join(state, "run"), { recursive: true });
  const certs = spec.tls ? (readText(pki.serverCert) ?? "") + (readText(pki.ca) ?? "") : "";
  const specOf = (config: string) =>
    JSON.stringify({ config, certs, token: spec.auth === "token" ? readText(pki.tokenCert) : "" });
  let pid = livePid(f);
  let port = readPort(f.portFile);
  /** Waits until our registry (`pid` on `port`, as they are by then) answers HTTP. */
  const answers = () =>
    waitHttp(
      `${spec.tls ? "https" : "http"}://127.0.0.1:${port}/v2/`,
      pid!,
      f.logFile,
      `registry ${spec.name}`,
      pki.ca,
      !!spec.clientCas,
    );
  if (pid !== undefined && port !== undefined) {
    const config = registryConfig(state, spec, port, pki, htpasswd);
    if (readText(f.specFile) !== specOf(config)) {
      log(`registry ${spec.name}: config changed; restarting it`);
      await stopService(f);
      pid = undefined;
    }
  } else if (pid !== undefined) {
    await stopService(f);
    pid = undefined;
  }
  if (pid === undefined) {
    for (let attempt = 0;; attempt++) {
      if (port === undefined || attempt > 0 || (await portInUse(port))) port = freshPort();
      const config = registryConfig(state, spec, port, pki, htpasswd);
      await Deno.writeTextFile(configPath, config);
      await Deno.writeTextFile(f.portFile, `${port}\n`);
      const logStart = fileSize(f.logFile);
      pid = await spawnDetached(["docker-registry", "serve", configPath], {
        pidFile: f.pidFile,
        logFile: f.logFile,
        cwd: state,
      });
      await Deno.writeTextFile(f.specFile, specOf(config));
      try {
        // Our own instance must have bound the port (not some other process answering on it).
        await waitLog(
          f.logFile,
          logStart,
          `listening on 127.0.0.1:${port}`,
          pid,
          `registry ${spec.name}`,
        );
        await answers();
        break;
      } catch (e) {
        await stopService(f);
        if (attempt < 3 && /address already in use/.test(logSince(f.logFile, logStart))) continue;
        throw e;
      }
    }
    log(`registry ${spec.name} on 127.0.0.1:${port} (pid ${pid})`);
  } else {
    await answers();
  }
  return {
    host: `127.0.0.1:${port}`,
    url: `${spec.tls ? "https" : "http"}://127.0.0.1:${port}`,
    tls: spec.tls,
    auth: spec.auth,
    pid: pid!,
    log: f.logFile,
    storage: join(state, "registries", spec.name, "storage"),
  };
}

/** The four standard registries' specs. */
export function standardSpecs(realm: string): Record<Variant, RegistrySpec> {
  return {
    plain: { name: "plain", tls: false, auth: "none" },
    tls: { name: "tls", tls: true, auth: "none" },
    basic: { name: "basic", tls: true, auth: "basic" },
    token: { name: "token", tls: false, auth: "token", realm },
  };
}
