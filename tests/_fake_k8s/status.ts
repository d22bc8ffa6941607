/**
 * `Status` objects, the shape in which the Kubernetes API server reports every failure
 * (`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":…,"reason":…,
 * "details":…,"code":…}`), and {@link ApiError}, which carries one through the fake server's
 * handlers.
 * @module
 */

/** A `metav1.Status`. */
export interface Status {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Failure" | "Success";
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code: number;
}

/** `metav1.StatusDetails`. */
export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
}

/** `metav1.StatusCause` (a field error of an Invalid status). */
export interface StatusCause {
  reason: string;
  message: string;
  field: string;
}

/** An API failure: thrown by handlers, answered as its {@link Status}. */
export class ApiError extends Error {
  /** The Status object sent to the client. */
  readonly status: Status;
  constructor(code: number, reason: string, message: string, details?: StatusDetails) {
    super(message);
    this.status = {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message,
      reason,
      ...(details ? { details } : {}),
      code,
    };
  }
}

/** `pods "x"` / `jobs.batch "x"` / `jobs.batch` as the API server names a resource. */
export function qualified(resource: string, group: string, name?: string): string {
  const r = group ? `${resource}.${group}` : resource;
  return name === undefined ? r : `${r} "${name}"`;
}

/** 404 NotFound: `jobs.batch "x" not found`. */
export function notFound(resource: string, group: string, name: string): ApiError {
  return new ApiError(404, "NotFound", `${qualified(resource, group, name)} not found`, {
    name,
    group: group || undefined,
    kind: resource,
  });
}

/** 409 AlreadyExists: `jobs.batch "x" already exists`. */
export function alreadyExists(resource: string, group: string, name: string): ApiError {
  return new ApiError(409, "AlreadyExists", `${qualified(resource, group, name)} already exists`, {
    name,
    group: group || undefined,
    kind: resource,
  });
}

/**
 * 422 Invalid: `Job.batch "x" is invalid: [field: Required value, …]` (one cause is written
 * without brackets, as apimachinery's `NewInvalid` does).
 */
export function invalid(kind: string, group: string, name: string, causes: StatusCause[]) {
  const parts = causes.map((c) => `${c.field}: ${c.message}`);
  const list = parts.length === 1 ? parts[0] : `[${parts.join(", ")}]`;
  return new ApiError(422, "Invalid", `${qualified(kind, group, name)} is invalid: ${list}`, {
    name,
    group: group || undefined,
    kind,
    causes,
  });
}

/** 400 BadRequest with a message. */
export function badRequest(message: string): ApiError {
  return new ApiError(400, "BadRequest", message);
}

/** 401 Unauthorized, exactly as kube-apiserver answers an unknown token. */
export function unauthorized(): ApiError {
  return new ApiError(401, "Unauthorized", "Unauthorized");
}

/**
 * 410 for a watch (or list) from a resource version older than the retained window: kube-apiserver
 * sends `too old resource version: RV (OLDEST)` with reason `Expired` and code 410
 * (`apierrors.IsResourceExpired`; clients also accept reason `Gone`, `apierrors.IsGone`).
 */
export function expired(rv: number, oldest: number): ApiError {
  return new ApiError(410, "Expired", `too old resource version: ${rv} (${oldest})`);
}

/** 405 MethodNotAllowed. */
export function methodNotAllowed(): ApiError {
  return new ApiError(
    405,
    "MethodNotAllowed",
    "the server does not allow this method on the requested resource",
  );
}
