/**
 * Credentials for API requests: a static token, a token file re-read when it changes (projected
 * ServiceAccount tokens rotate; client-go re-reads them too), or a client-go exec credential
 * plugin (`client.authentication.k8s.io/v1` and `v1beta1`): the command runs with its args and
 * env and `KUBERNETES_EXEC_INFO`, and its ExecCredential's token or client certificate is cached
 * until `expirationTimestamp`. No token or key is ever logged: each is registered for redaction.
 * @module
 */
import { z } from "zod";
import { KanikoError } from "../../lib/errors.ts";
import { addSecret, log } from "../../lib/log.ts";
import type { CredentialSource, ExecConfig } from "./config.ts";

/** What one request authenticates with. */
export interface RequestCredentials {
  /** Bearer token. */
  token?: string;
  /** Client certificate and key (PEM) from an exec plugin. */
  cert?: string;
  key?: string;
}

const ExecCredentialSchema = z.looseObject({
  apiVersion: z.string().optional(),
  kind: z.literal("ExecCredential"),
  status: z.looseObject({
    token: z.string().nullish(),
    clientCertificateData: z.string().nullish(),
    clientKeyData: z.string().nullish(),
    expirationTimestamp: z.string().nullish(),
  }).nullish(),
});

const DEFAULT_EXEC_API = "client.authentication.k8s.io/v1beta1";
const EXPIRY_MARGIN_MS = 10_000;

/** Hands out credentials, refreshing them when they expire or the server says 401. */
export class CredentialProvider {
  readonly #source: CredentialSource;
  #cached?: { creds: RequestCredentials; expires: number };
  #file?: { mtime: number; size: number; token: string };
  #pending?: Promise<RequestCredentials>;

  constructor(source: CredentialSource) {
    this.#source = source;
  }

  /** True when a 401 may be cured by fetching new credentials. */
  get refreshable(): boolean {
    return this.#source.kind === "exec" || this.#source.kind === "tokenFile";
  }

  /** Forgets cached credentials (after a 401). */
  invalidate(): void {
    this.#cached = undefined;
    this.#file = undefined;
  }

  /** The credentials for the next request. */
  async get(): Promise<RequestCredentials> {
    const source = this.#source;
    switch (source.kind) {
      case "none":
        return {};
      case "token":
        addSecret(source.token);
        return { token: source.token };
      case "tokenFile":
        return { token: await this.#readTokenFile(source.path) };
      case "exec": {
        if (this.#cached && Date.now() < this.#cached.expires) return this.#cached.creds;
        this.#pending ??= runExecPlugin(source.exec, source.cluster).then((r) => {
          this.#cached = r;
          return r.creds;
        }).finally(() => (this.#pending = undefined));
        return await this.#pending;
      }
    }
  }

  async #readTokenFile(path: string): Promise<string> {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(path);
    } catch (e) {
      throw new KanikoError(`token file ${path}: ${(e as Error).message}`);
    }
    const mtime = info.mtime?.getTime() ?? 0;
    if (this.#file && this.#file.mtime === mtime && this.#file.size === info.size) {
      return this.#file.token;
    }
    const token = (await Deno.readTextFile(path)).trim();
    addSecret(token);
    this.#file = { mtime, size: info.size, token };
    return token;
  }
}

/** Runs a credential plugin once; exported for tests. */
export async function runExecPlugin(
  exec: ExecConfig,
  cluster: Record<string, unknown>,
): Promise<{ creds: RequestCredentials; expires: number }> {
  const apiVersion = exec.apiVersion || DEFAULT_EXEC_API;
  if (exec.interactiveMode === "Always") {
    throw new KanikoError(
      `credential plugin ${exec.command} needs a terminal (interactiveMode: Always)`,
      {
        hint: "log in with the plugin first, or use a kubeconfig with a token or certificate",
      },
    );
  }
  const spec: Record<string, unknown> = { interactive: false };
  if (exec.provideClusterInfo) spec.cluster = cluster;
  const info = JSON.stringify({ apiVersion, kind: "ExecCredential", spec });
  const env: Record<string, string> = { KUBERNETES_EXEC_INFO: info };
  for (const { name, value } of exec.env ?? []) env[name] = value;
  const what = `credential plugin ${exec.command}`;
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(exec.command, {
      args: exec.args ?? [],
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    const hint = exec.installHint?.trim().split("\n")[0] || "install it or fix the kubeconfig";
    throw new KanikoError(`${what}: cannot run it: ${(e as Error).message}`, { hint });
  }
  if (!output.success) {
    const err = new TextDecoder().decode(output.stderr).trim().split("\n").pop() ?? "";
    throw new KanikoError(`${what} exited with code ${output.code}${err ? `: ${err}` : ""}`);
  }
  return parseExecCredential(new TextDecoder().decode(output.stdout), apiVersion, what);
}

/** Validates a plugin's ExecCredential output. */
export function parseExecCredential(
  text: string,
  apiVersion: string,
  what: string,
): { creds: RequestCredentials; expires: number } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new KanikoError(`${what}: its output is not JSON`);
  }
  const parsed = ExecCredentialSchema.safeParse(raw);
  if (!parsed.success) {
    throw new KanikoError(`${what}: its output is not an ExecCredential`);
  }
  if (parsed.data.apiVersion && parsed.data.apiVersion !== apiVersion) {
    throw new KanikoError(
      `${what}: it answered ${parsed.data.apiVersion}, the kubeconfig asks for ${apiVersion}`,
    );
  }
  const status = parsed.data.status ?? {};
  const creds: RequestCredentials = {};
  if (status.token) creds.token = status.token;
  if (status.clientCertificateData && status.clientKeyData) {
    creds.cert = status.clientCertificateData;
    creds.key = status.clientKeyData;
  }
  if (!creds.token && !creds.cert) {
    throw new KanikoError(
      `${what}: the ExecCredential has neither a token nor a client certificate`,
    );
  }
  for (const secret of [creds.token, creds.key]) if (secret) addSecret(secret);
  let expires = Number.POSITIVE_INFINITY;
  if (status.expirationTimestamp) {
    const t = Date.parse(status.expirationTimestamp);
    if (Number.isNaN(t)) throw new KanikoError(`${what}: bad expirationTimestamp`);
    expires = t - EXPIRY_MARGIN_MS;
  }
  log.debug("got Kubernetes credentials from a plugin", {
    plugin: what,
    kind: creds.token ? "token" : "client certificate",
  });
  return { creds, expires };
}
