import assert from "node:assert/strict";
import { KanikoError } from "../../lib/errors.ts";
import {
  backoffDelay,
  isRetryable,
  parseRetryAfter,
  REAUTH,
  RetryableError,
  withRetry,
} from "../../lib/registry/retry.ts";

const FAST = { initialDelay: 1, maxDelay: 5 };

Deno.test("retry: backoff is full jitter between half and all of the exponential ceiling", () => {
  const options = { initialDelay: 100, maxDelay: 1000 };
  for (let attempt = 0; attempt < 12; attempt++) {
    const ceiling = Math.min(1000, 100 * 2 ** attempt);
    const seen = new Set<number>();
    for (let i = 0; i < 300; i++) {
      const d = backoffDelay(attempt, options);
      assert.ok(d >= Math.floor(ceiling / 2) && d <= ceiling, `attempt ${attempt}: ${d}`);
      seen.add(d);
    }
    assert.ok(seen.size > 1, "the delay is jittered");
  }
});

Deno.test("retry: the delay never exceeds maxDelay, even for huge attempt numbers", () => {
  for (const attempt of [20, 60, 1000]) {
    const d = backoffDelay(attempt, { initialDelay: 1000, maxDelay: 30_000 });
    assert.ok(d >= 15_000 && d <= 30_000, String(d));
  }
});

Deno.test("retry: Retry-After raises the delay to at least what the server asked", () => {
  const options = { initialDelay: 10, maxDelay: 1000 };
  for (let i = 0; i < 50; i++) assert.equal(backoffDelay(0, options, 700), 700);
  // a Retry-After beyond maxDelay is honoured, not cut short
  assert.equal(backoffDelay(0, options, 5000), 5000);
  // a small Retry-After does not shorten the backoff
  for (let i = 0; i < 50; i++) {
    const d = backoffDelay(3, options, 1);
    assert.ok(d >= 40 && d <= 80, String(d));
  }
});

Deno.test("retry: parseRetryAfter reads seconds and HTTP dates", () => {
  assert.equal(parseRetryAfter("120"), 120_000);
  assert.equal(parseRetryAfter(" 3 "), 3000);
  assert.equal(parseRetryAfter("0"), 0);
  const now = Date.parse("Wed, 21 Oct 2015 07:28:00 GMT");
  assert.equal(parseRetryAfter("Wed, 21 Oct 2015 07:28:30 GMT", now), 30_000);
  assert.equal(parseRetryAfter("Wed, 21 Oct 2015 07:27:00 GMT", now), 0, "a past date means now");
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter(""), undefined);
  assert.equal(parseRetryAfter("soon"), undefined);
  assert.ok([0, undefined].includes(parseRetryAfter("-5")), "never negative");
});

Deno.test("retry: isRetryable accepts 5xx, 429, network and reauth failures only", () => {
  for (const code of ["NETWORK", "SERVER_ERROR", "TOOMANYREQUESTS", REAUTH]) {
    assert.ok(isRetryable(new KanikoError("x", { code })), code);
  }
  for (
    const code of ["TLS", "UNAUTHORIZED", "DENIED", "NOT_FOUND", "MANIFEST_UNKNOWN", undefined]
  ) {
    assert.ok(!isRetryable(new KanikoError("x", { code })), String(code));
  }
  assert.ok(!isRetryable(new Error("plain")));
  assert.ok(!isRetryable("string"));
});

Deno.test("retry: retries retryable failures up to `retries` times, then rethrows the last", async () => {
  let calls = 0;
  const retried: number[] = [];
  const err: Error = await withRetry<never>(() => {
    calls++;
    throw new KanikoError(`boom ${calls}`, { code: "SERVER_ERROR" });
  }, { retries: 2, ...FAST, onRetry: (_e, n) => retried.push(n) }).catch((e: Error) => e);
  assert.equal(calls, 3);
  assert.deepEqual(retried, [1, 2]);
  assert.equal(err.message, "boom 3");
});

Deno.test("retry: succeeds when a later attempt succeeds, passing the attempt number", async () => {
  const attempts: number[] = [];
  const result = await withRetry((attempt) => {
    attempts.push(attempt);
    if (attempt < 2) throw new KanikoError("flaky", { code: "NETWORK" });
    return Promise.resolve("done");
  }, { retries: 5, ...FAST });
  assert.equal(result, "done");
  assert.deepEqual(attempts, [0, 1, 2]);
});

Deno.test("retry: client errors (4xx) and other errors are never retried", async () => {
  for (
    const error of [
      new KanikoError("not found", { code: "NOT_FOUND" }),
      new KanikoError("denied", { code: "DENIED" }),
      new KanikoError("no code"),
      new TypeError("bug"),
    ]
  ) {
    let calls = 0;
    await assert.rejects(
      withRetry(() => {
        calls++;
        throw error;
      }, { retries: 5, ...FAST }),
      (e) => e === error,
    );
    assert.equal(calls, 1, error.message);
  }
});

Deno.test("retry: retries 0 means one attempt", async () => {
  let calls = 0;
  await assert.rejects(withRetry(() => {
    calls++;
    throw new KanikoError("x", { code: "NETWORK" });
  }, { retries: 0, ...FAST }));
  assert.equal(calls, 1);
});

Deno.test("retry: REAUTH is replayed once for free, even without retries", async () => {
  const attempts: number[] = [];
  const result = await withRetry((attempt) => {
    attempts.push(attempt);
    if (attempts.length === 1) throw new RetryableError("refreshed", { code: REAUTH });
    return Promise.resolve(42);
  }, { retries: 0, ...FAST });
  assert.equal(result, 42);
  assert.deepEqual(attempts, [0, 0], "the replay does not count as a retry");
});

Deno.test("retry: a second REAUTH is not replayed for free", async () => {
  let calls = 0;
  await assert.rejects(
    withRetry(() => {
      calls++;
      throw new RetryableError("refreshed", { code: REAUTH });
    }, { retries: 0, ...FAST }),
    (e) => e instanceof KanikoError && e.code === REAUTH,
  );
  assert.equal(calls, 2);
  calls = 0;
  await assert.rejects(withRetry(() => {
    calls++;
    throw new RetryableError("refreshed", { code: REAUTH });
  }, { retries: 1, ...FAST }));
  assert.equal(calls, 3, "one free replay plus one counted retry");
});

Deno.test("retry: Retry-After of a failure is waited for", async () => {
  let calls = 0;
  const delays: number[] = [];
  const started = performance.now();
  await withRetry(() => {
    if (calls++ === 0) {
      throw new RetryableError("slow down", { code: "TOOMANYREQUESTS", retryAfterMs: 300 });
    }
    return Promise.resolve();
  }, { retries: 1, ...FAST, onRetry: (_e, _n, ms) => delays.push(ms) });
  assert.deepEqual(delays, [300]);
  assert.ok(performance.now() - started >= 290);
});

Deno.test("retry: an aborted signal ends the wait and stops retrying", async () => {
  const controller = new AbortController();
  let calls = 0;
  const started = performance.now();
  setTimeout(() => controller.abort(), 50);
  await assert.rejects(withRetry(() => {
    calls++;
    throw new KanikoError("down", { code: "SERVER_ERROR" });
  }, { retries: 10, initialDelay: 10_000, maxDelay: 10_000, signal: controller.signal }));
  assert.equal(calls, 1, "no attempt is made once the wait was interrupted");
  assert.ok(performance.now() - started < 2000);
});
