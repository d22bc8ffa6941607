/**
 * Retries with exponential backoff and full jitter, for the failures a retry can cure: HTTP 5xx,
 * 429 (honouring `Retry-After`) and network errors. Client errors (other 4xx) are never retried.
 * @module
 */
import { KanikoError } from "../errors.ts";

/**
 * Code of the failure of a request whose body could not be replayed after a 401: the
 * credentials were refreshed, and the whole operation may be replayed once.
 */
export const REAUTH = "REAUTH";

/** Error codes a retry can cure. */
const RETRYABLE_CODES = new Set(["NETWORK", "SERVER_ERROR", "TOOMANYREQUESTS", REAUTH]);

/** Options for {@link withRetry}. */
export interface RetryOptions {
  /** Retries after the first attempt (0: no retry). */
  retries: number;
  /** First delay in ms before jitter. */
  initialDelay: number;
  /** Largest delay in ms. */
  maxDelay: number;
  /** Called before each retry with the error and the delay chosen. */
  onRetry?: (err: KanikoError, attempt: number, delayMs: number) => void;
  signal?: AbortSignal;
}

/** A registry failure that carries a server-requested delay. */
export class RetryableError extends KanikoError {
  /** Milliseconds the server asked us to wait (from `Retry-After`). */
  readonly retryAfterMs?: number;
  constructor(message: string, options: { code: string; retryAfterMs?: number; hint?: string }) {
    super(message, { code: options.code, hint: options.hint });
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** True when a retry may cure `err`. */
export function isRetryable(err: unknown): err is KanikoError {
  return err instanceof KanikoError && err.code !== undefined && RETRYABLE_CODES.has(err.code);
}

/** Runs `fn`, retrying retryable failures with backoff; rethrows the last failure. */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  let reauthenticated = false;
  for (let attempt = 0;; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (err instanceof KanikoError && err.code === REAUTH && !reauthenticated) {
        reauthenticated = true; // credentials were refreshed: one free replay
        attempt--;
        continue;
      }
      if (!isRetryable(err) || attempt >= options.retries || options.signal?.aborted) throw err;
      const delay = backoffDelay(attempt, options, (err as RetryableError).retryAfterMs);
      options.onRetry?.(err, attempt + 1, delay);
      await sleep(delay, options.signal);
      if (options.signal?.aborted) throw err;
    }
  }
}

/** The delay before retry number `attempt + 1`: full jitter, at least any `Retry-After`. */
export function backoffDelay(
  attempt: number,
  options: Pick<RetryOptions, "initialDelay" | "maxDelay">,
  retryAfterMs?: number,
): number {
  const ceiling = Math.min(options.maxDelay, options.initialDelay * 2 ** attempt);
  const jittered = ceiling / 2 + Math.random() * (ceiling / 2);
  const wanted = Math.max(jittered, retryAfterMs ?? 0);
  return Math.min(Math.round(wanted), Math.max(options.maxDelay, retryAfterMs ?? 0));
}

/** Parses a `Retry-After` header (seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(
  value: string | null,
  now: number = Date.now(),
): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
