import assert from "node:assert/strict";
import { describeError, KanikoError } from "../../lib/errors.ts";
import { responseError } from "../../lib/registry/errors.ts";
import type { HttpResponse } from "../../lib/registry/http_types.ts";
import { RetryableError } from "../../lib/registry/retry.ts";
import { readLimited } from "../../lib/registry/transport.ts";

/** An HttpResponse over a string body, recording whether the body was consumed. */
function response(status: number, body = "", headers: Record<string, string> = {}) {
  const stream = new Response(body).body;
  let used = false;
  const res: HttpResponse & { consumed: () => boolean } = {
    status,
    headers: new Headers(headers),
    url: "https://reg.example/v2/x",
    body: stream,
    bytes: (limit = 4 << 20) => {
      used = true;
      return readLimited(stream, limit, "https://reg.example/v2/x");
    },
    text: async (limit = 4 << 20) => {
      used = true;
      return new TextDecoder().decode(await readLimited(stream, limit, "https://reg.example/v2/x"));
    },
    discard: async () => {
      used = true;
      await stream?.cancel();
    },
    consumed: () => used,
  };
  return res;
}

const oci = (...errors: { code?: string; message?: string; detail?: unknown }[]) =>
  JSON.stringify({ errors });

Deno.test("errors: an OCI error body becomes one line with code, message and status", async () => {
  const res = response(
    404,
    oci({ code: "MANIFEST_UNKNOWN", message: "manifest unknown", detail: { Tag: "x" } }),
  );
  const err = await responseError(res, "fetching manifest reg.example/app:1");
  assert.ok(err instanceof KanikoError);
  assert.equal(
    err.message,
    "fetching manifest reg.example/app:1 failed: MANIFEST_UNKNOWN: manifest unknown (HTTP 404)",
  );
  assert.equal(err.code, "MANIFEST_UNKNOWN");
  assert.equal(err.hint, "check the tag or digest");
  assert.equal(
    describeError(err),
    "fetching manifest reg.example/app:1 failed: MANIFEST_UNKNOWN: manifest unknown (HTTP 404); " +
      "check the tag or digest",
  );
  assert.ok(res.consumed(), "the body is consumed");
});

Deno.test("errors: several OCI errors are joined; the first code wins", async () => {
  const err = await responseError(
    response(
      400,
      oci({ code: "MANIFEST_BLOB_UNKNOWN", message: "blob unknown" }, { code: "DIGEST_INVALID" }),
    ),
    "pushing manifest",
  );
  assert.equal(
    err.message,
    "pushing manifest failed: MANIFEST_BLOB_UNKNOWN: blob unknown; DIGEST_INVALID (HTTP 400)",
  );
  assert.equal(err.code, "MANIFEST_BLOB_UNKNOWN");
});

Deno.test("errors: HTML bodies are ignored", async () => {
  const html = "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>nginx</body>\n</html>";
  const err = await responseError(
    response(502, html, { "content-type": "text/html" }),
    "pushing blob",
  );
  assert.equal(err.message, "pushing blob failed: HTTP 502");
  const err404 = await responseError(response(404, "  <!DOCTYPE html><p>Not here</p>"), "x");
  assert.equal(err404.message, "x failed: HTTP 404");
  assert.equal(err404.code, "NOT_FOUND");
});

Deno.test("errors: plain-text bodies are kept short and on one line", async () => {
  const err = await responseError(response(400, "bad request\nline two\n\nline three"), "x");
  assert.ok(!err.message.includes("\n"), JSON.stringify(err.message));
  assert.match(err.message, /^x failed: bad request line two line three \(HTTP 400\)$/);
  const long = await responseError(response(400, "y".repeat(10_000)), "x");
  assert.ok(long.message.length < 260);
});

Deno.test("errors: status codes map to codes and hints when the body has none", async () => {
  const cases: [number, string, string | undefined][] = [
    [401, "UNAUTHORIZED", "check the credentials for this registry in $DOCKER_CONFIG/config.json"],
    [403, "DENIED", "the credentials in use are not allowed to do this; check their permissions"],
    [404, "NOT_FOUND", undefined],
    [405, "HTTP_405", undefined],
    [413, "HTTP_413", undefined],
  ];
  for (const [status, code, hint] of cases) {
    const err = await responseError(response(status), "doing it");
    assert.equal(err.message, `doing it failed: HTTP ${status}`);
    assert.equal(err.code, code);
    assert.equal(err.hint, hint);
    assert.ok(!(err instanceof RetryableError));
  }
});

Deno.test("errors: 429 and 5xx are retryable and carry Retry-After", async () => {
  const limited = await responseError(response(429, "", { "retry-after": "7" }), "pulling");
  assert.ok(limited instanceof RetryableError);
  assert.equal(limited.code, "TOOMANYREQUESTS");
  assert.equal(limited.retryAfterMs, 7000);
  assert.match(limited.hint ?? "", /rate-limiting/);
  const coded = await responseError(
    response(403, oci({ code: "TOOMANYREQUESTS", message: "pull rate limit" })),
    "pulling",
  );
  assert.ok(coded instanceof RetryableError);
  assert.equal(coded.code, "TOOMANYREQUESTS");
  const down = await responseError(
    response(503, oci({ code: "UNAVAILABLE", message: "maintenance" }), { "retry-after": "2" }),
    "pushing",
  );
  assert.ok(down instanceof RetryableError);
  assert.equal(down.code, "SERVER_ERROR");
  assert.equal(down.retryAfterMs, 2000);
  assert.equal(down.message, "pushing failed: UNAVAILABLE: maintenance (HTTP 503)");
});

Deno.test("errors: malformed JSON and odd shapes fall back to the text", async () => {
  const err = await responseError(response(400, '{"errors": "nope"}'), "x");
  assert.equal(err.message, 'x failed: {"errors": "nope"} (HTTP 400)');
  const empty = await responseError(response(400, oci()), "x");
  assert.equal(empty.message, "x failed: HTTP 400");
  assert.equal(empty.code, "HTTP_400");
});
