/**
 * Registry credentials from the Docker config file, exactly as `docker login` writes
 * `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`): `auths` entries (keys normalised as
 * docker's `ConvertToHostname` does; Docker Hub's under `https://index.docker.io/v1/`),
 * `credHelpers` per host and the default `credsStore`, run as `docker-credential-NAME get`.
 * Secrets never appear in errors, logs or the string forms of {@link Credentials}.
 * @module
 */
import { z } from "zod";
import { join } from "node:path";
import { describeError, KanikoError, oneLine } from "../errors.ts";
import { DEFAULT_REGISTRY, normalizeRegistry } from "./reference.ts";

/** Credentials for one registry. All fields absent means anonymous. */
export interface Credentials {
  /** User name for Basic auth or the token server. */
  username?: string;
  /** Password matching {@link username}. */
  password?: string;
  /** OAuth2 refresh token (`identitytoken`, or a helper's Secret with Username `<token>`). */
  identityToken?: string;
  /** A bearer token sent to the registry as is (`registrytoken`). */
  registryToken?: string;
  /**
   * Where they came from, or where they were looked for when anonymous: the config file path or
   * `credential helper docker-credential-NAME`. Never secret.
   */
  source?: string;
}

/** Options of {@link resolveCredentials}. */
export interface ResolveCredentialsOptions {
  /** Directory of `config.json`; default `$DOCKER_CONFIG`, else `~/.docker`. */
  dockerConfigDir?: string;
  /** Extra environment for credential helpers (e.g. `PATH`); the process environment otherwise. */
  env?: Record<string, string>;
  /** Milliseconds a credential helper may run (default 60 000). */
  helperTimeout?: number;
}

/** The key Docker Hub credentials are stored under. */
export const DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/";
const TOKEN_USERNAME = "<token>";
const HELPER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

const AuthEntrySchema = z.looseObject({
  auth: z.string().optional(),
  username: z.string().optional(),
  password: z.string().optional(),
  identitytoken: z.string().optional(),
  registrytoken: z.string().optional(),
});
const ConfigSchema = z.looseObject({
  auths: z.record(z.string(), AuthEntrySchema.nullable()).optional(),
  credHelpers: z.record(z.string(), z.string()).optional(),
  credsStore: z.string().optional(),
});
type DockerConfig = z.infer<typeof ConfigSchema>;
const HelperOutputSchema = z.looseObject({
  ServerURL: z.string().optional(),
  Username: z.string().optional(),
  Secret: z.string().optional(),
});

const cache = new Map<string, Promise<Credentials>>();

/**
 * The credentials for `registry` (a normalised registry host such as `docker.io` or
 * `localhost:5000`): from its credential helper, else the default credential store, else the
 * `auths` entry; anonymous when the config file or the entry is missing or the helper has none.
 * Cached per registry and config directory for the life of the process.
 */
export function resolveCredentials(
  registry: string,
  options: ResolveCredentialsOptions = {},
): Promise<Credentials> {
  const dir = configDir(options.dockerConfigDir);
  const key = `${dir ?? ""}\0${normalizeRegistry(registry)}`;
  let result = cache.get(key);
  if (!result) {
    result = lookup(normalizeRegistry(registry), dir, options);
    result.catch(() => cache.delete(key));
    cache.set(key, result);
  }
  return result;
}

/** Forgets every cached lookup (for tests, and after the config file changed). */
export function clearCredentialCache(): void {
  cache.clear();
}

/** True when `creds` carries no secret: requests go out anonymously. */
export function isAnonymous(creds: Credentials): boolean {
  return !creds.username && !creds.password && !creds.identityToken && !creds.registryToken;
}

/** The secret values in `creds` (to scrub from any text that might be shown). */
export function secretsOf(creds: Credentials): string[] {
  const out = [creds.password, creds.identityToken, creds.registryToken];
  const basic = basicAuthorization(creds);
  if (basic) out.push(basic.slice("Basic ".length));
  return out.filter((s): s is string => !!s && s.length >= 3);
}

/** `Basic base64(user:password)` for `creds`, or undefined without a username and password. */
export function basicAuthorization(creds: Credentials): string | undefined {
  if (!creds.username || creds.password === undefined) return undefined;
  const bytes = new TextEncoder().encode(`${creds.username}:${creds.password}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

/** `text` with every secret of `creds` (also URL-encoded) replaced by `***`. */
export function scrubSecrets(text: string, creds: Credentials): string {
  let out = text;
  for (const secret of secretsOf(creds)) {
    out = out.split(secret).join("***").split(encodeURIComponent(secret)).join("***");
  }
  return out;
}

/** The directory holding `config.json`, or undefined when no home directory is known. */
export function configDir(dockerConfigDir?: string): string | undefined {
  if (dockerConfigDir) return dockerConfigDir;
  const env = Deno.env.get("DOCKER_CONFIG");
  if (env) return env;
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE");
  return home ? join(home, ".docker") : undefined;
}

/** The host part of a config key: `https://host/v1/` and `http://host` are `host`. */
export function convertToHostname(key: string): string {
  const bare = key.replace(/^https?:\/\//i, "");
  return bare.split("/", 1)[0];
}

async function lookup(
  registry: string,
  dir: string | undefined,
  options: ResolveCredentialsOptions,
): Promise<Credentials> {
  if (!dir) return makeCredentials({});
  const file = join(dir, "config.json");
  const config = await readConfig(file);
  if (!config) return makeCredentials({ source: file });
  const serverUrl = registry === DEFAULT_REGISTRY ? DOCKER_HUB_AUTH_KEY : registry;
  const helper = findHelper(config, registry) ?? config.credsStore;
  if (helper) {
    if (!HELPER_NAME_RE.test(helper)) {
      throw new KanikoError(`${file} is malformed: invalid credential helper name "${helper}"`);
    }
    return await runHelper(helper, serverUrl, { ...options, file });
  }
  const entry = findAuthEntry(config, registry);
  return entry ? decodeEntry(entry, file, serverUrl) : makeCredentials({ source: file });
}

/** Reads and validates the config file; undefined when it does not exist. */
async function readConfig(file: string): Promise<DockerConfig | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new KanikoError(`cannot read Docker config ${file}: ${describeError(e)}`, { cause: e });
  }
  if (text.trim() === "") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new KanikoError(`Docker config ${file} is not valid JSON`, {
      hint: "fix or remove the file, or run docker login again",
    });
  }
  const parsed = ConfigSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue.path.length ? issue.path.join(".") : "(top level)";
    throw new KanikoError(`Docker config ${file} is malformed: ${path}: ${issue.message}`);
  }
  return parsed.data;
}

/** The hostnames a config key may use for `registry`. */
function hostnamesFor(registry: string): string[] {
  return registry === DEFAULT_REGISTRY
    ? ["index.docker.io", "docker.io", "registry-1.docker.io"]
    : [registry];
}

function findHelper(config: DockerConfig, registry: string): string | undefined {
  const helpers = config.credHelpers ?? {};
  const exact = registry === DEFAULT_REGISTRY ? [DOCKER_HUB_AUTH_KEY] : [];
  for (const key of [...exact, ...hostnamesFor(registry)]) {
    if (helpers[key]) return helpers[key];
  }
  const hosts = hostnamesFor(registry);
  const key = Object.keys(helpers).find((k) => hosts.includes(convertToHostname(k)));
  return key ? helpers[key] : undefined;
}

function findAuthEntry(config: DockerConfig, registry: string) {
  const auths = config.auths ?? {};
  const exact = registry === DEFAULT_REGISTRY ? DOCKER_HUB_AUTH_KEY : registry;
  if (auths[exact]) return auths[exact];
  for (const host of hostnamesFor(registry)) {
    const key = Object.keys(auths).find((k) => auths[k] && convertToHostname(k) === host);
    if (key) return auths[key];
  }
  return undefined;
}

function decodeEntry(
  entry: z.infer<typeof AuthEntrySchema>,
  file: string,
  serverUrl: string,
): Credentials {
  let { username, password } = entry;
  if (entry.auth) {
    const bad = () =>
      new KanikoError(
        `Docker config ${file} is malformed: the "auth" of ${serverUrl} is not base64 user:password`,
        {
          hint: "run docker login again",
        },
      );
    let decoded: string;
    try {
      decoded = new TextDecoder("utf-8", { fatal: true }).decode(
        Uint8Array.from(atob(entry.auth.trim()), (c) => c.charCodeAt(0)),
      );
    } catch {
      throw bad();
    }
    const colon = decoded.indexOf(":");
    if (colon < 0) throw bad();
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1).replace(/\0+$/, "");
  }
  return makeCredentials({
    username: username || undefined,
    password: password || undefined,
    identityToken: entry.identitytoken || undefined,
    registryToken: entry.registrytoken || undefined,
    source: file,
  });
}

/** Runs `docker-credential-NAME get` with `serverUrl` on stdin. */
async function runHelper(
  name: string,
  serverUrl: string,
  options: ResolveCredentialsOptions & { file: string },
): Promise<Credentials> {
  const program = `docker-credential-${name}`;
  const source = `credential helper ${program}`;
  const env = options.env ? { ...Deno.env.toObject(), ...options.env } : undefined;
  let output: Deno.CommandOutput;
  try {
    const child = new Deno.Command(program, {
      args: ["get"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env,
      signal: AbortSignal.timeout(options.helperTimeout ?? 60_000),
    }).spawn();
    const writer = child.stdin.getWriter();
    // A helper may exit without reading stdin; its exit status tells what happened.
    await writer.write(new TextEncoder().encode(serverUrl)).then(() => writer.close()).catch(
      () => {},
    );
    output = await child.output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new KanikoError(
        `${source} (configured in ${options.file} for ${serverUrl}) is not installed`,
        { hint: `put ${program} on PATH or remove it from ${options.file}` },
      );
    }
    throw new KanikoError(`${source} failed for ${serverUrl}: ${describeError(e)}`, { cause: e });
  }
  const stdout = new TextDecoder().decode(output.stdout).trim();
  if (!output.success) {
    if (/credentials not found/i.test(stdout)) return makeCredentials({ source });
    const detail = helperDetail(stdout || new TextDecoder().decode(output.stderr));
    const how = output.signal ? `was killed (${output.signal})` : `exited with ${output.code}`;
    throw new KanikoError(`${source} ${how} for ${serverUrl}${detail}`, {
      hint: `check that ${program} works: echo ${serverUrl} | ${program} get`,
    });
  }
  return parseHelperOutput(stdout, source, serverUrl);
}

function parseHelperOutput(stdout: string, source: string, serverUrl: string): Credentials {
  let value: unknown;
  try {
    value = JSON.parse(stdout);
  } catch {
    value = undefined;
  }
  const parsed = HelperOutputSchema.safeParse(value);
  if (!parsed.success) {
    throw new KanikoError(`${source} printed an invalid answer for ${serverUrl}`, {
      hint: 'expected JSON {"ServerURL","Username","Secret"}',
    });
  }
  const { Username: username, Secret: secret } = parsed.data;
  if (!secret) return makeCredentials({ source });
  if (username === TOKEN_USERNAME) return makeCredentials({ identityToken: secret, source });
  return makeCredentials({ username: username || undefined, password: secret, source });
}

/** The first line of a failing helper's output, unless it might hold a secret. */
function helperDetail(text: string): string {
  const line = oneLine(text.split("\n", 1)[0] ?? "");
  if (!line || /secret|[{}]/i.test(line)) return "";
  return `: ${line.length > 200 ? `${line.slice(0, 200)}…` : line}`;
}

const REDACTED = "[credentials redacted]";

/** Builds a {@link Credentials} whose JSON, string and inspected forms hide the secrets. */
export function makeCredentials(fields: Credentials): Credentials {
  const creds: Credentials = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v !== undefined) (creds as Record<string, string>)[k] = v;
  }
  const hidden = (value: unknown) => ({ value, enumerable: false });
  const safe = () => ({ source: creds.source, anonymous: isAnonymous(creds), note: REDACTED });
  Object.defineProperties(creds, {
    toJSON: hidden(safe),
    toString: hidden(() => `Credentials(${creds.source ?? "anonymous"}; ${REDACTED})`),
    [Symbol.for("Deno.customInspect")]: hidden(() => `Credentials ${JSON.stringify(safe())}`),
    [Symbol.for("nodejs.util.inspect.custom")]: hidden(() =>
      `Credentials ${JSON.stringify(safe())}`
    ),
  });
  return creds;
}
