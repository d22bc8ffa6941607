/**
 * Kubeconfig files pointing at a fake cluster, in kubectl's YAML layout, for the three kinds of
 * user credentials the k8s driver supports: a bearer token, a client certificate (inline data or
 * file paths), and an exec credential plugin (`client.authentication.k8s.io/v1`).
 * @module
 */

/** The user entry of a kubeconfig. */
export type KubeUser =
  | { token: string }
  | { clientCertificate: string; clientKey: string; inline?: boolean }
  | {
    exec: { command: string; args?: string[]; env?: Record<string, string>; apiVersion?: string };
  };

/** Options of {@link kubeconfigYaml}. */
export interface KubeconfigOptions {
  server: string;
  /** PEM of the CA (as `certificate-authority-data`); absent: plain HTTP or `insecureSkipVerify`. */
  caPem?: string;
  user: KubeUser;
  namespace?: string;
  /** Names of the cluster, user and context (default `fake`). */
  name?: string;
}

type Y = string | number | boolean | Y[] | { [k: string]: Y | undefined };

/** A small YAML emitter (block style; strings double-quoted, which YAML reads as JSON does). */
export function toYaml(v: Y, indent = ""): string {
  if (Array.isArray(v)) {
    return v.map((x) => {
      const inner = toYaml(x, indent + "  ");
      return typeof x === "object"
        ? `${indent}-${inner.slice(indent.length + 1)}`
        : `${indent}- ${inner.trim()}\n`;
    }).join("");
  }
  if (typeof v === "object") {
    return Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => {
      if (typeof x === "object") {
        const empty = Array.isArray(x) ? x.length === 0 : Object.keys(x!).length === 0;
        if (empty) return `${indent}${k}: ${Array.isArray(x) ? "[]" : "{}"}\n`;
        return `${indent}${k}:\n${toYaml(x!, indent + "  ")}`;
      }
      return `${indent}${k}: ${toYaml(x!)}`;
    }).join("");
  }
  return `${typeof v === "string" ? JSON.stringify(v) : String(v)}\n`;
}

function b64(s: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(s)));
}

function userEntry(u: KubeUser): Record<string, Y> {
  if ("token" in u) return { token: u.token };
  if ("exec" in u) {
    return {
      exec: {
        apiVersion: u.exec.apiVersion ?? "client.authentication.k8s.io/v1",
        command: u.exec.command,
        args: u.exec.args ?? [],
        env: Object.entries(u.exec.env ?? {}).map(([name, value]) => ({ name, value })),
        interactiveMode: "Never",
        provideClusterInfo: false,
      },
    };
  }
  if (u.inline) {
    return {
      "client-certificate-data": b64(Deno.readTextFileSync(u.clientCertificate)),
      "client-key-data": b64(Deno.readTextFileSync(u.clientKey)),
    };
  }
  return { "client-certificate": u.clientCertificate, "client-key": u.clientKey };
}

/** The text of a kubeconfig with one cluster, user and context (the current one). */
export function kubeconfigYaml(o: KubeconfigOptions): string {
  const name = o.name ?? "fake";
  return toYaml({
    apiVersion: "v1",
    kind: "Config",
    preferences: {},
    clusters: [{
      name,
      cluster: {
        server: o.server,
        "certificate-authority-data": o.caPem ? b64(o.caPem) : undefined,
      },
    }],
    users: [{ name, user: userEntry(o.user) }],
    contexts: [{ name, context: { cluster: name, user: name, namespace: o.namespace } }],
    "current-context": name,
  });
}

/**
 * Writes an exec credential plugin (a shell script) that prints an ExecCredential with `token`
 * and appends one line to `<script>.calls` per invocation; returns the script's path.
 */
export async function execPlugin(dir: string, token: string): Promise<string> {
  const path = `${dir}/fake-k8s-credential.sh`;
  const cred = JSON.stringify({
    apiVersion: "client.authentication.k8s.io/v1",
    kind: "ExecCredential",
    status: { token, expirationTimestamp: new Date(Date.now() + 3600_000).toISOString() },
  });
  await Deno.writeTextFile(
    path,
    `#!/bin/sh\necho call >> '${path}.calls'\ncat <<'EOF'\n${cred}\nEOF\n`,
    {
      mode: 0o755,
    },
  );
  return path;
}
