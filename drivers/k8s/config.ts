/**
 * Where the Kubernetes API is and how to authenticate to it: a kubeconfig file (`--kubeconfig`,
 * else the first file of `$KUBECONFIG` — several files are merged as kubectl does, the first
 * occurrence of a name winning — else `~/.kube/config`) with its current context or
 * `--kube-context`, or the in-cluster configuration of a pod (`KUBERNETES_SERVICE_HOST`/`PORT`
 * and the ServiceAccount files). The kubeconfig YAML is validated with zod; relative file paths
 * in it are relative to the file that names them, as in client-go.
 * @module
 */
import { dirname, isAbsolute, join } from "node:path";
import YAML from "yaml";
import { z } from "zod";
import { KanikoError } from "../../lib/errors.ts";

/** Where in-cluster ServiceAccount files live. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

const ExecEnvSchema = z.looseObject({ name: z.string(), value: z.string() });

/** The `exec` stanza of a kubeconfig user (a client-go credential plugin). */
export const ExecConfigSchema = z.looseObject({
  apiVersion: z.string().optional(),
  command: z.string().min(1),
  args: z.array(z.string()).nullish(),
  env: z.array(ExecEnvSchema).nullish(),
  installHint: z.string().nullish(),
  provideClusterInfo: z.boolean().nullish(),
  interactiveMode: z.string().nullish(),
});
/** A credential plugin's configuration. */
export type ExecConfig = z.infer<typeof ExecConfigSchema>;

const ClusterSchema = z.looseObject({
  server: z.string().min(1),
  "certificate-authority": z.string().nullish(),
  "certificate-authority-data": z.string().nullish(),
  "insecure-skip-tls-verify": z.boolean().nullish(),
  "tls-server-name": z.string().nullish(),
});

const UserSchema = z.looseObject({
  token: z.string().nullish(),
  tokenFile: z.string().nullish(),
  "client-certificate": z.string().nullish(),
  "client-certificate-data": z.string().nullish(),
  "client-key": z.string().nullish(),
  "client-key-data": z.string().nullish(),
  exec: ExecConfigSchema.nullish(),
  "auth-provider": z.unknown().optional(),
  username: z.string().nullish(),
});

const ContextSchema = z.looseObject({
  cluster: z.string().min(1),
  user: z.string().nullish(),
  namespace: z.string().nullish(),
});

/** A kubeconfig file, as far as we read it. */
export const KubeconfigSchema = z.looseObject({
  "current-context": z.string().nullish(),
  clusters: z.array(z.looseObject({ name: z.string(), cluster: ClusterSchema })).nullish(),
  users: z.array(z.looseObject({ name: z.string(), user: UserSchema.nullish() })).nullish(),
  contexts: z.array(z.looseObject({ name: z.string(), context: ContextSchema })).nullish(),
});

/** How requests authenticate, besides a client certificate in {@link TlsSettings}. */
export type CredentialSource =
  | { kind: "none" }
  | { kind: "token"; token: string }
  | { kind: "tokenFile"; path: string }
  | { kind: "exec"; exec: ExecConfig; cluster: Record<string, unknown> };

/** TLS settings of the API server connection (PEM strings, never logged). */
export interface TlsSettings {
  caCerts?: string[];
  insecure: boolean;
  cert?: string;
  key?: string;
}

/** A resolved connection to one API server. */
export interface KubeConfig {
  /** `https://host:port`, without a trailing slash. */
  server: string;
  /** For messages: `kubeconfig /root/.kube/config, context kind` or `in-cluster config`. */
  source: string;
  /** The namespace Jobs go to. */
  namespace: string;
  tls: TlsSettings;
  auth: CredentialSource;
}

/** What {@link loadKubeConfig} reads besides the files. */
export interface LoadOptions {
  /** `--kubeconfig`. */
  kubeconfig?: string;
  /** `--kube-context`. */
  context?: string;
  /** `--namespace`. */
  namespace?: string;
  /** Environment lookup (default: the process's). */
  env?: (name: string) => string | undefined;
  /** ServiceAccount directory (tests). */
  serviceAccountDir?: string;
}

/** Finds and resolves the configuration, in kubectl's order; throws one clear line. */
export async function loadKubeConfig(options: LoadOptions = {}): Promise<KubeConfig> {
  const env = options.env ?? ((name: string) => Deno.env.get(name));
  const saDir = options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const files = await kubeconfigFiles(options.kubeconfig, env);
  if (files.length > 0) {
    const merged = await readMerged(files);
    const config = resolveContext(merged, options.context, files[0]);
    const namespace = options.namespace || config.namespace || await inClusterNamespace(saDir) ||
      "default";
    return { ...config, namespace };
  }
  if (options.context) {
    throw new KanikoError(`--kube-context ${options.context}: no kubeconfig file was found`, {
      hint: "pass --kubeconfig or set KUBECONFIG",
    });
  }
  return await inClusterConfig(env, saDir, options.namespace);
}

async function kubeconfigFiles(
  flag: string | undefined,
  env: (name: string) => string | undefined,
): Promise<string[]> {
  if (flag) {
    if (!await exists(flag)) {
      throw new KanikoError(`--kubeconfig ${flag}: the file does not exist`);
    }
    return [flag];
  }
  const list = env("KUBECONFIG");
  if (list) {
    const found = [];
    for (const path of list.split(":").filter(Boolean)) if (await exists(path)) found.push(path);
    if (found.length > 0) return found;
  }
  const home = env("HOME");
  const fallback = home ? join(home, ".kube", "config") : undefined;
  return fallback && await exists(fallback) ? [fallback] : [];
}

type Kubeconfig = z.infer<typeof KubeconfigSchema>;
type Item<K extends "clusters" | "users" | "contexts"> =
  & NonNullable<Kubeconfig[K]>[number]
  & { file: string };

interface Merged {
  currentContext?: string;
  clusters: Map<string, Item<"clusters">>;
  users: Map<string, Item<"users">>;
  contexts: Map<string, Item<"contexts">>;
}

/** Parses one kubeconfig text (YAML or JSON); exported for tests. */
export function parseKubeconfig(text: string, file: string): Kubeconfig {
  let raw: unknown;
  try {
    raw = YAML.parse(text);
  } catch (e) {
    throw new KanikoError(`kubeconfig ${file}: not valid YAML: ${(e as Error).message}`);
  }
  const parsed = KubeconfigSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new KanikoError(
      `kubeconfig ${file}: ${issue.path.join(".") || "the document"}: ${issue.message}`,
      { hint: "check the file with kubectl config view" },
    );
  }
  return parsed.data;
}

async function readMerged(files: string[]): Promise<Merged> {
  const merged: Merged = { clusters: new Map(), users: new Map(), contexts: new Map() };
  for (const file of files) {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch (e) {
      throw new KanikoError(`kubeconfig ${file}: cannot read it: ${(e as Error).message}`);
    }
    const doc = parseKubeconfig(text, file);
    merged.currentContext ||= doc["current-context"] || undefined;
    for (const c of doc.clusters ?? []) {
      if (!merged.clusters.has(c.name)) merged.clusters.set(c.name, { ...c, file });
    }
    for (const u of doc.users ?? []) {
      if (!merged.users.has(u.name)) merged.users.set(u.name, { ...u, file });
    }
    for (const c of doc.contexts ?? []) {
      if (!merged.contexts.has(c.name)) merged.contexts.set(c.name, { ...c, file });
    }
  }
  return merged;
}

function resolveContext(merged: Merged, flag: string | undefined, first: string) {
  const name = flag || merged.currentContext;
  const where = `kubeconfig ${first}`;
  if (!name) {
    throw new KanikoError(`${where}: no current-context is set`, {
      hint: "pass --kube-context NAME or run kubectl config use-context NAME",
    });
  }
  const context = merged.contexts.get(name)?.context;
  if (!context) {
    throw new KanikoError(`${where}: context ${JSON.stringify(name)} is not defined`, {
      hint: `known contexts: ${[...merged.contexts.keys()].join(", ") || "none"}`,
    });
  }
  const cluster = merged.clusters.get(context.cluster);
  if (!cluster) {
    throw new KanikoError(`${where}: cluster ${JSON.stringify(context.cluster)} is not defined`);
  }
  const user = context.user ? merged.users.get(context.user) : undefined;
  if (context.user && !user) {
    throw new KanikoError(`${where}: user ${JSON.stringify(context.user)} is not defined`);
  }
  const c = cluster.cluster;
  const tls: TlsSettings = { insecure: c["insecure-skip-tls-verify"] === true };
  const ca = pemFrom(c["certificate-authority-data"], c["certificate-authority"], cluster.file);
  if (ca) tls.caCerts = [ca];
  const u = user?.user ?? {};
  const ufile = user?.file ?? first;
  const cert = pemFrom(u["client-certificate-data"], u["client-certificate"], ufile);
  const key = pemFrom(u["client-key-data"], u["client-key"], ufile);
  if (cert && key) Object.assign(tls, { cert, key });
  if (u["auth-provider"]) {
    throw new KanikoError(
      `${where}: user ${context.user}: auth-provider plugins are not supported`,
      {
        hint: "use an exec credential plugin (e.g. kubelogin, gke-gcloud-auth-plugin) or a token",
      },
    );
  }
  const clusterInfo = { server: c.server, "insecure-skip-tls-verify": tls.insecure } as Record<
    string,
    unknown
  >;
  if (ca) clusterInfo["certificate-authority-data"] = btoa(ca);
  const auth: CredentialSource = u.token
    ? { kind: "token", token: u.token }
    : u.tokenFile
    ? { kind: "tokenFile", path: relativeTo(u.tokenFile, ufile) }
    : u.exec
    ? { kind: "exec", exec: resolveExec(u.exec, ufile), cluster: clusterInfo }
    : { kind: "none" };
  return {
    server: c.server.replace(/\/+$/, ""),
    source: `kubeconfig ${first}, context ${name}`,
    namespace: context.namespace || undefined,
    tls,
    auth,
  };
}

/** A relative plugin command with a slash is relative to the kubeconfig (client-go). */
function resolveExec(exec: ExecConfig, file: string): ExecConfig {
  const command = exec.command.includes("/") && !isAbsolute(exec.command)
    ? join(dirname(file), exec.command)
    : exec.command;
  return { ...exec, command };
}

function pemFrom(data: string | null | undefined, path: string | null | undefined, file: string) {
  if (data) {
    try {
      return new TextDecoder().decode(Uint8Array.from(atob(data), (c) => c.charCodeAt(0)));
    } catch {
      throw new KanikoError(`kubeconfig ${file}: a *-data field is not valid base64`);
    }
  }
  if (!path) return undefined;
  const abs = relativeTo(path, file);
  try {
    return Deno.readTextFileSync(abs);
  } catch (e) {
    throw new KanikoError(`kubeconfig ${file}: cannot read ${abs}: ${(e as Error).message}`);
  }
}

function relativeTo(path: string, file: string): string {
  return isAbsolute(path) ? path : join(dirname(file), path);
}

async function inClusterConfig(
  env: (name: string) => string | undefined,
  saDir: string,
  namespaceFlag: string | undefined,
): Promise<KubeConfig> {
  const host = env("KUBERNETES_SERVICE_HOST");
  const port = env("KUBERNETES_SERVICE_PORT");
  if (!host || !port) {
    throw new KanikoError("no Kubernetes configuration found", {
      hint: "pass --kubeconfig, set KUBECONFIG, create ~/.kube/config, or run inside a pod",
    });
  }
  const tokenPath = join(saDir, "token");
  if (!await exists(tokenPath)) {
    throw new KanikoError(`in-cluster config: ${tokenPath} does not exist`, {
      hint: "mount a ServiceAccount token (automountServiceAccountToken: true)",
    });
  }
  const tls: TlsSettings = { insecure: false };
  try {
    tls.caCerts = [await Deno.readTextFile(join(saDir, "ca.crt"))];
  } catch {
    // the system roots are used
  }
  const hostPart = host.includes(":") ? `[${host}]` : host;
  return {
    server: `https://${hostPart}:${port}`,
    source: "in-cluster config",
    namespace: namespaceFlag || await inClusterNamespace(saDir) || "default",
    tls,
    auth: { kind: "tokenFile", path: tokenPath },
  };
}

async function inClusterNamespace(saDir: string): Promise<string | undefined> {
  try {
    return (await Deno.readTextFile(join(saDir, "namespace"))).trim() || undefined;
  } catch {
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}
