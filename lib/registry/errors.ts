/**
 * Registry error responses turned into one clear line: the OCI error body
 * (`{"errors":[{"code","message","detail"}]}`), the HTTP status, and what the user can do.
 * @module
 */
import { z } from "zod";
import { KanikoError, type KanikoErrorOptions, oneLine } from "../errors.ts";
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
 * A registry's refusal that a retry cannot cure (a 4xx other than 429): the error with the HTTP
 * status and the URL it answered, so callers can tell refusals apart without reading messages.
 */
export class RegistryError extends KanikoError {
  /** The HTTP status of the response. */
  readonly status: number;
  /** The URL of the request (after redirects). */
  readonly url: string;

  constructor(message: string, options: KanikoErrorOptions & { status: number; url: string }) {
    super(message, options);
    this.name = "RegistryError";
    this.status = options.status;
    this.url = options.url;
  }
}

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
  return new RegistryError(message, { code, hint: HINTS[code], status, url: response.url });
}
