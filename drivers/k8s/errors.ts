/**
 * Kubernetes API failures as one line each: the verb, the resource, the namespace, what the
 * server said (its `Status` object, zod-validated) and what to do — RBAC denials point at
 * `deploy/rbac.yaml`.
 * @module
 */
import { z } from "zod";
import { KanikoError, oneLine } from "../../lib/errors.ts";

/** The `Status` object the API server answers failures with. */
export const StatusSchema = z.looseObject({
  kind: z.literal("Status"),
  status: z.string().optional(),
  message: z.string().optional(),
  reason: z.string().optional(),
  code: z.number().optional(),
  details: z.looseObject({
    name: z.string().optional(),
    kind: z.string().optional(),
    group: z.string().optional(),
  }).nullish(),
});

/** What a request was doing, for messages. */
export interface Operation {
  /** API verb: `get`, `list`, `watch`, `create`, `delete`. */
  verb: string;
  /** Resource (plural, with group for non-core): `jobs.batch`, `pods`, `pods/log`, `nodes`. */
  resource: string;
  /** Namespace, for namespaced resources. */
  namespace?: string;
  /** Object name, when there is one. */
  name?: string;
}

/** A failed API request; `status` is the HTTP status. */
export class KubeApiError extends KanikoError {
  readonly status: number;
  readonly reason?: string;

  constructor(message: string, status: number, reason: string | undefined, hint?: string) {
    super(message, { hint, code: reason ?? `HTTP_${status}` });
    this.name = "KubeApiError";
    this.status = status;
    this.reason = reason;
  }
}

/** Describes an operation: `create jobs.batch "x" in namespace ns`. */
export function describeOperation(op: Operation): string {
  const name = op.name ? ` ${JSON.stringify(op.name)}` : "";
  const ns = op.namespace ? ` in namespace ${op.namespace}` : "";
  return `${op.verb} ${op.resource}${name}${ns}`;
}

/** Builds the error for a non-2xx answer; `body` is the response text (a Status, usually). */
export function apiError(
  status: number,
  body: string,
  op: Operation,
  server: string,
): KubeApiError {
  let parsed: z.infer<typeof StatusSchema> | undefined;
  try {
    const result = StatusSchema.safeParse(JSON.parse(body));
    if (result.success) parsed = result.data;
  } catch {
    // not JSON: a proxy's page
  }
  const detail = oneLine(parsed?.message ?? (body.slice(0, 200) || `HTTP ${status}`));
  const what = `Kubernetes API ${server}: ${describeOperation(op)}`;
  const reason = parsed?.reason;
  return new KubeApiError(`${what}: ${detail} (${status})`, status, reason, hintFor(status, op));
}

function hintFor(status: number, op: Operation): string | undefined {
  switch (status) {
    case 401:
      return "the credentials were refused: check the kubeconfig user (token, certificate or " +
        "credential plugin) or the ServiceAccount token";
    case 403:
      if (op.resource === "nodes") {
        return "listing nodes needs the ClusterRole kaniko-deno-nodes of deploy/rbac.yaml " +
          "(kubectl apply -f deploy/rbac.yaml), or pass --require-native-nodes=false";
      }
      return `the identity may not ${op.verb} ${op.resource}: apply deploy/rbac.yaml ` +
        `(Role kaniko-deno-driver and its RoleBinding) in namespace ${op.namespace ?? "default"} ` +
        "and run as its ServiceAccount";
    case 404:
      return op.name
        ? `it is gone (deleted, or removed by ttlSecondsAfterFinished)`
        : `check that namespace ${op.namespace ?? "default"} exists (--namespace)`;
    case 409:
      return "an object of that name exists already; run the build again";
    case 422:
      return "the API server refused the object (an admission policy or quota?): see its message";
    case 429:
      return "the API server is throttling requests; try again later";
    default:
      return undefined;
  }
}
