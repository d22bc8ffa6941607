/**
 * The answers the fault proxy makes up itself (injected statuses, the 401 of an expired token,
 * its own errors) and small helpers of its request handling.
 * @module
 */
import type { RuleSpec } from "./rules.ts";

/** OCI error codes used for injected statuses. */
const STATUS_CODES: Record<number, string> = {
  400: "UNSUPPORTED",
  401: "UNAUTHORIZED",
  403: "DENIED",
  404: "NAME_UNKNOWN",
  429: "TOOMANYREQUESTS",
};

/** The answer of a `status` rule: its body, or an OCI error body, with its headers. */
export function injectedStatus(spec: RuleSpec, id: string): Response {
  const status = spec.status!;
  const code = STATUS_CODES[status] ?? (status >= 500 ? "UNAVAILABLE" : "UNKNOWN");
  const headers: Record<string, string> = {
    "docker-distribution-api-version": "registry/2.0",
    ...(spec.headers ?? {}),
  };
  if (spec.retryAfter !== undefined) headers["retry-after"] = String(spec.retryAfter);
  if (spec.body !== undefined) {
    return new Response(noBody(status) ? null : spec.body, { status, headers });
  }
  const res = errorResponse(status, code, `fault injected by the fault proxy (rule ${id})`);
  for (const [k, v] of Object.entries(headers)) res.headers.set(k, v);
  return res;
}

/**
 * The 401 distribution sends for an expired token: the upstream's `challenge`, with the scope
 * of the request's repository and `error="invalid_token"`.
 */
export function expiredResponse(challenge: string, method: string, path: string): Response {
  const name = path.match(/^\/v2\/(.+?)\/(?:blobs|manifests|tags)\//)?.[1];
  const actions = method === "GET" || method === "HEAD"
    ? ["pull"]
    : method === "DELETE"
    ? ["delete"]
    : ["pull", "push"];
  if (name) challenge += `,scope="repository:${name}:${actions.join(",")}"`;
  challenge += `,error="invalid_token"`;
  const detail = name
    ? actions.map((a) => ({ Type: "repository", Class: "", Name: name, Action: a }))
    : null;
  const body = JSON.stringify({
    errors: [{ code: "UNAUTHORIZED", message: "authentication required", detail }],
  });
  return new Response(method === "HEAD" ? null : body, {
    status: 401,
    headers: {
      "content-type": "application/json; charset=utf-8",
      "docker-distribution-api-version": "registry/2.0",
      "www-authenticate": challenge,
      "content-length": String(body.length),
    },
  });
}

function noBody(status: number): boolean {
  return status === 204 || status === 304 || status < 200;
}

/** An OCI error response (`{errors: [{code, message}]}`; no body where the status has none). */
export function errorResponse(status: number, code: string, message: string): Response {
  const body = JSON.stringify({ errors: [{ code, message }] });
  return new Response(noBody(status) ? null : body, {
    status,
    headers: { "content-type": "application/json; charset=utf-8" },
  });
}

/** Reads and drops a request body (a client that goes away is no error). */
export async function drain(body: ReadableStream<Uint8Array> | null): Promise<void> {
  if (!body) return;
  try {
    for await (const _ of body) {
      // dropped
    }
  } catch {
    // the client went away
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** An error's message and (node) code, for one line. */
export function errText(err: unknown): string {
  const e = err as { message?: string; code?: string };
  return [e?.message ?? String(err), e?.code].filter(Boolean).join(" ");
}
