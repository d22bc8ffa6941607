/**
 * Registry error responses turned into one clear line: the OCI error body
 * (`{"errors":[{"code","message","detail"}]}`), the HTTP status, and what the user can do.
 * @module
 */
import { z } from "zod";
import { KanikoError, oneLine } from "../errors.ts";
import type { HttpResponse } from "./http_types.ts";
import { parseRetryAfter, RetryableError } from "./retry.ts";

const ErrorBody = z.object({
  errors: z.array(z.looseObject({ code: z.string().optional(), message: z.string().optional() })),
});

const HINTS: Record<string, string> = {
  UNAUTHORIZED: "check the credentials for this registry in $DOCKER_CONFIG/config.json",
  DENIED: "the credentials in use are not allowed to do this; check their permissions",
  NAME_UNKNOWN: "check the repository name",
  MANIFEST_UNKNOWN: "check the tag or digest",
  TOOMANYREQUESTS: "the registry is rate-limiting; retry later or authenticate",
};

/**
 * Builds the error for an unexpected response. `what` says what was attempted, e.g.
 * `pushing manifest to 127.0.0.1:5000/library/busybox:latest`. Consumes the body.
 */
export async function responseError(response: HttpResponse, what: string): Promise<KanikoError> {
  const text = await response.text(64 * 1024).catch(() => "");
  let code: string | undefined;
  let detail = "";
  try {
    const body = ErrorBody.parse(JSON.parse(text));
    const first = body.errors[0];
    code = first?.code;
    detail = body.errors.map((e) => [e.code, e.message].filter(Boolean).join(": ")).join("; ");
  } catch {
    detail = text.trim().startsWith("<") ? "" : oneLine(text).slice(0, 200);
  }
  detail = oneLine(detail);
  const status = response.status;
  const statusText = `HTTP ${status}`;
  const message = `${what} failed: ${detail ? `${detail} (${statusText})` : statusText}`;
  if (status === 429 || code === "TOOMANYREQUESTS") {
    return new RetryableError(message, {
      code: "TOOMANYREQUESTS",
      retryAfterMs: parseRetryAfter(response.headers.get("retry-after")),
      hint: HINTS.TOOMANYREQUESTS,
    });
  }
  if (status >= 500) {
    return new RetryableError(message, {
      code: "SERVER_ERROR",
      retryAfterMs: parseRetryAfter(response.headers.get("retry-after")),
    });
  }
  if (!code) {
    code = status === 401
      ? "UNAUTHORIZED"
      : status === 403
      ? "DENIED"
      : status === 404
      ? "NOT_FOUND"
      : `HTTP_${status}`;
  }
  return new KanikoError(message, { code, hint: HINTS[code] });
}
