/**
 * A fake Kubernetes API server for tests, following the real API's semantics closely enough for
 * our k8s driver: nodes with `kubernetes.io/os`/`arch` labels and Ready conditions, batch/v1
 * Jobs with real validation, defaulting, status and conditions, pods with phases, container
 * states and termination messages, one global resourceVersion, resumable watches (410 when too
 * old), pod logs, Secrets, bearer-token / client-certificate authentication and RBAC (403 with
 * kube-apiserver's messages). Its simulated nodes run each pod by invoking our CLI locally with
 * the container's args, env and mounted secret files (see `container.ts` for the adaptations).
 *
 * Not modelled: namespaces (every namespace exists), PUT/PATCH, Events, pod finalizers,
 * indexed or parallel Jobs (`completions` must be 1), init or sidecar containers (a pod runs its
 * first container), resource requests, taints other than not-ready, affinity (nodeSelector only).
 * The batch/v1 REST default propagation of a Job DELETE is Orphan, as in kube-apiserver: pass
 * `propagationPolicy` Background or Foreground to delete the pods.
 *
 * ```ts
 * await using k8s = await startFakeK8s({ nodes: [{ name: "amd", platform: "linux/amd64" }] });
 * const kubeconfig = await k8s.writeKubeconfig(`${dir}/kubeconfig`, { token: "admin-token" });
 * ```
 * @module
 */
import { apiApp } from "./api.ts";
import { ALL, type AuthConfig, type Rule } from "./auth.ts";
import { Cluster, type ClusterOptions } from "./cluster.ts";
import { type KubeconfigOptions, kubeconfigYaml, type KubeUser } from "./kubeconfig.ts";
import { clientCertificate, makePki, type Pki } from "./pki.ts";
import { type Served, servePlain, serveTls } from "./serve.ts";
import type { KObject } from "./store.ts";
import { type CutMode, WatchHub, type WatchRecord } from "./watch.ts";

export type { AuthConfig, ClusterOptions, CutMode, KObject, KubeUser, Pki, Rule, WatchRecord };
export type { NodeSpec } from "./nodes.ts";
export type { CommandRunner, ProcessSpec, RunningProcess } from "./runner.ts";
export { ALL, Cluster };
export { execPlugin, kubeconfigYaml } from "./kubeconfig.ts";

/** The token of the built-in cluster admin (`system:masters`). */
export const ADMIN_TOKEN = "fake-k8s-admin-token";

/** Options of {@link startFakeK8s}. */
export interface FakeK8sOptions extends ClusterOptions {
  /** Serve HTTPS with a fresh CA (default true); client certificates need it. */
  tls?: boolean;
  /** Tokens and users in addition to the admin ({@link ADMIN_TOKEN}). */
  auth?: Partial<AuthConfig>;
  /** Interval of watch bookmarks, ms (default 1000). */
  bookmarkMs?: number;
}

/** A running fake cluster. */
export interface FakeK8s extends AsyncDisposable {
  /** `https://127.0.0.1:PORT`. */
  url: string;
  cluster: Cluster;
  hub: WatchHub;
  auth: AuthConfig;
  /** PEM of the CA that signed the server certificate (TLS only). */
  caPem?: string;
  pki?: Pki;
  /** Every request, as `METHOD PATH?QUERY USER`. */
  requests: string[];
  /** Writes a kubeconfig for `user`; returns its path. */
  writeKubeconfig(path: string, user: KubeUser, namespace?: string): Promise<string>;
  /** A client certificate for a user (CN) in groups (O); TLS only. */
  clientCertificate(user: string, groups?: string[]): Promise<{ cert: string; key: string }>;
  /** Creates a Secret (`data` values are plain text or bytes; base64 is done here). */
  createSecret(
    ns: string,
    name: string,
    data: Record<string, string | Uint8Array>,
    type?: string,
  ): KObject;
  /** A fetch with a bearer token (default the admin's) that trusts the cluster CA. */
  fetch(path: string, init?: RequestInit & { token?: string | null }): Promise<Response>;
  /** Ends every open watch (`error`: break the connection; `close`: clean end of stream). */
  cutWatches(mode?: CutMode): void;
  /** Drops the retained watch window: older resourceVersions get 410. */
  compact(): void;
  close(): Promise<void>;
}

/** The rules a builder's ServiceAccount needs in `ns` (and nodes list at the cluster scope). */
export function driverRules(ns: string, withNodes = true): Rule[] {
  return [
    {
      verbs: ["create", "get", "list", "watch", "delete"],
      apiGroups: ["batch"],
      resources: ["jobs"],
      namespaces: [ns],
    },
    { verbs: ["get", "list", "watch"], apiGroups: [""], resources: ["pods"], namespaces: [ns] },
    { verbs: ["get"], apiGroups: [""], resources: ["pods/log"], namespaces: [ns] },
    ...(withNodes
      ? [{ verbs: ["get", "list", "watch"], apiGroups: [""], resources: ["nodes"] }]
      : []),
  ];
}

function b64(data: string | Uint8Array): string {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** Starts a fake cluster (stop it with `close()` or `await using`). */
export async function startFakeK8s(opts: FakeK8sOptions = {}): Promise<FakeK8s> {
  const auth: AuthConfig = {
    tokens: { [ADMIN_TOKEN]: "kubernetes-admin", ...opts.auth?.tokens },
    users: { "kubernetes-admin": { groups: ["system:masters"] }, ...opts.auth?.users },
    anonymous: opts.auth?.anonymous,
  };
  const cluster = new Cluster(opts);
  const hub = new WatchHub();
  const requests: string[] = [];
  const app = apiApp({ cluster, auth, hub, bookmarkMs: opts.bookmarkMs ?? 1000, requests });
  const tls = opts.tls ?? true;
  let pki: Pki | undefined;
  let served: Served;
  let caPem: string | undefined;
  if (tls) {
    pki = await makePki(await Deno.makeTempDir({ prefix: "fake-k8s-pki-" }));
    caPem = await Deno.readTextFile(pki.ca);
    served = await serveTls((req, env) => app.fetch(req, env), {
      cert: await Deno.readTextFile(pki.serverCert),
      key: await Deno.readTextFile(pki.serverKey),
      clientCa: caPem,
    });
  } else {
    served = servePlain((req, env) => app.fetch(req, env));
  }
  const client = caPem ? Deno.createHttpClient({ caCerts: [caPem] }) : undefined;
  let closed: Promise<void> | undefined;
  const close = () =>
    closed ??= (async () => {
      hub.cut("close");
      await cluster.close();
      await served.close();
      client?.close();
      if (pki) await Deno.remove(pki.dir, { recursive: true }).catch(() => {});
    })();
  return {
    url: served.url,
    cluster,
    hub,
    auth,
    caPem,
    pki,
    requests,
    async writeKubeconfig(path, user, namespace) {
      const o: KubeconfigOptions = { server: served.url, caPem, user, namespace };
      await Deno.writeTextFile(path, kubeconfigYaml(o), { mode: 0o600 });
      return path;
    },
    clientCertificate(user, groups = []) {
      if (!pki) throw new Error("client certificates need tls: true");
      return clientCertificate(pki, user, groups);
    },
    createSecret(ns, name, data, type = "Opaque") {
      const encoded = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)]));
      return cluster.createSecret({ metadata: { name, namespace: ns }, type, data: encoded });
    },
    fetch(path, init = {}) {
      const { token = ADMIN_TOKEN, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (token !== null) headers.set("authorization", `Bearer ${token}`);
      // deno-lint-ignore no-explicit-any
      return fetch(`${served.url}${path}`, { ...rest, headers, client } as any);
    },
    cutWatches: (mode = "error") => hub.cut(mode),
    compact: () => cluster.store.compact(),
    close,
    [Symbol.asyncDispose]: close,
  };
}
