/**
 * A minimal, test-bed-only HTTP helper for talking to the four registries (Basic and Bearer
 * auth handled): used to probe readiness and verify pushes, and by tests to check the registries
 * themselves. It is not the product's registry client (that is lib/registry/).
 * @module
 */
import type { RegistryInfo } from "./env.ts";

/** What the helper needs of the test bed. */
export interface HttpEnv {
  registries: Record<string, RegistryInfo>;
  /** Test CA path (PEM). */
  ca: string;
  user: string;
  pass: string;
}

/** A fully read response (the body is read so the TLS client can be closed). */
export interface FetchResult {
  status: number;
  headers: Headers;
  body: Uint8Array;
  text(): string;
  json(): any;
}

/** Options of {@link registryFetch}. */
export interface RegistryFetchOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Uint8Array<ArrayBuffer> | string;
  /** Send credentials (Basic to the registry or the token server). Default true. */
  creds?: boolean;
  /** Token scope to ask for; default: the one in the registry's challenge. */
  scope?: string;
}

/** `fetch` that trusts the test CA for https URLs; reads the whole body. */
export async function fetchAll(
  url: string,
  init: RequestInit = {},
  caPath?: string,
): Promise<FetchResult> {
  const client = url.startsWith("https:") && caPath
    ? Deno.createHttpClient({ caCerts: [await Deno.readTextFile(caPath)] })
    : undefined;
  try {
    const res = await fetch(url, { ...init, client, redirect: "manual" } as RequestInit);
    const body = new Uint8Array(await res.arrayBuffer());
    return {
      status: res.status,
      headers: res.headers,
      body,
      text: () => new TextDecoder().decode(body),
      json: () => JSON.parse(new TextDecoder().decode(body)),
    };
  } finally {
    client?.close();
  }
}

/** Parses a `WWW-Authenticate: Bearer k="v",…` challenge. */
export function parseChallenge(
  header: string | null,
): { scheme: string; params: Record<string, string> } | undefined {
  if (!header) return undefined;
  const m = header.match(/^(\w+)\s+(.*)$/);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  for (const p of m[2].matchAll(/(\w+)="([^"]*)"/g)) params[p[1]] = p[2];
  return { scheme: m[1].toLowerCase(), params };
}

/** Fetches a token for `scope` from a Bearer challenge's realm. */
export async function fetchToken(
  challenge: Record<string, string>,
  scope: string | undefined,
  creds: { user: string; pass: string } | undefined,
): Promise<FetchResult> {
  const u = new URL(challenge.realm);
  if (challenge.service) u.searchParams.set("service", challenge.service);
  if (scope) u.searchParams.append("scope", scope);
  const headers: Record<string, string> = {};
  if (creds) headers.authorization = `Basic ${btoa(`${creds.user}:${creds.pass}`)}`;
  return await fetchAll(u.toString(), { headers });
}

/**
 * A request to `path` (e.g. `/v2/library/busybox/manifests/latest`) of a test-bed registry, with
 * the auth its variant needs: Basic for `basic`; for `token` the 401 challenge is answered with a
 * token from the realm (Basic credentials to the token server unless `creds: false`).
 */
export async function registryFetch(
  env: HttpEnv,
  variant: string,
  path: string,
  opts: RegistryFetchOptions = {},
): Promise<FetchResult> {
  const reg = env.registries[variant];
  if (!reg) throw new Error(`unknown registry variant ${variant}`);
  const withCreds = opts.creds ?? true;
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (reg.auth === "basic" && withCreds) {
    headers.authorization = `Basic ${btoa(`${env.user}:${env.pass}`)}`;
  }
  const init = (): RequestInit => ({ method: opts.method ?? "GET", headers, body: opts.body });
  let res = await fetchAll(reg.url + path, init(), env.ca);
  if (res.status === 401 && reg.auth === "token") {
    const ch = parseChallenge(res.headers.get("www-authenticate"));
    if (ch?.scheme === "bearer" && ch.params.realm) {
      const tok = await fetchToken(
        ch.params,
        opts.scope ?? ch.params.scope,
        withCreds ? env : undefined,
      );
      if (tok.status !== 200) return tok;
      headers.authorization = `Bearer ${tok.json().token}`;
      res = await fetchAll(reg.url + path, init(), env.ca);
    }
  }
  return res;
}

/** Accept header listing every manifest media type. */
export const MANIFEST_ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

/** The digest the registry serves for `repo:ref`, or undefined when it has none. */
export async function manifestDigest(
  env: HttpEnv,
  variant: string,
  repo: string,
  ref: string,
): Promise<string | undefined> {
  const res = await registryFetch(env, variant, `/v2/${repo}/manifests/${ref}`, {
    method: "HEAD",
    headers: { accept: MANIFEST_ACCEPT },
  });
  if (res.status !== 200) return undefined;
  return res.headers.get("docker-content-digest") ?? undefined;
}
