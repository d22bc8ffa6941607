/**
 * The fault proxy's rules: their JSON shape ({@link FaultRuleSchema}), how a rule matches a
 * request and when its fault fires, and the choice among the rules for one request
 * ({@link decide}).
 * @module
 */
import { z } from "zod";

/** One fault rule (see the documentation of `scripts/fault_proxy/mod.ts`). */
export const FaultRuleSchema = z.object({
  /** Name for the counters; `rule<N>` when absent. */
  id: z.string().optional(),
  /** Methods, `|`-separated, case-insensitive; every method when absent. */
  method: z.string().optional(),
  /** Regular expression tested against the request path (without the query). */
  path: z.string().optional(),
  /** Request headers (lower-case names) that must be present and match these regexes. */
  matchHeaders: z.record(z.string(), z.string()).optional(),
  /** Let the first `skip` matching requests through untouched. */
  skip: z.number().int().min(0).optional(),
  /** After `skip`, fault only every `every`th matching request (1: each). */
  every: z.number().int().min(1).optional(),
  /** Fault at most this many requests (for `expireToken`: answer at most this many 401s). */
  count: z.number().int().min(0).optional(),
  /** Answer with this status instead of forwarding. */
  status: z.number().int().min(100).max(599).optional(),
  /** `Retry-After` value sent with `status`. */
  retryAfter: z.union([z.number(), z.string()]).optional(),
  /** Body sent with `status` (default: an OCI error body). */
  body: z.string().optional(),
  /** Extra headers sent with `status`. */
  headers: z.record(z.string(), z.string()).optional(),
  /** Drop the connection after K bytes of the request body (or of the response body). */
  reset: z.object({
    request: z.number().int().min(0).optional(),
    response: z.number().int().min(0).optional(),
  }).refine((r) => (r.request === undefined) !== (r.response === undefined), {
    message: "reset needs exactly one of request or response",
  }).optional(),
  /** Milliseconds to wait before forwarding (or before answering with `status`). */
  delay: z.number().min(0).optional(),
  /** Refuse Bearer tokens after they were used this many times or are this old. */
  expireToken: z.object({
    afterRequests: z.number().int().min(0).optional(),
    afterMs: z.number().min(0).optional(),
  }).refine((e) => e.afterRequests !== undefined || e.afterMs !== undefined, {
    message: "expireToken needs afterRequests or afterMs",
  }).optional(),
  /** Read (and drop) the request body before answering with `status` or 401 (default true). */
  drain: z.boolean().optional(),
});
/** One fault rule. */
export type FaultRule = z.input<typeof FaultRuleSchema>;
/** One fault rule as validated (defaults applied). */
export type RuleSpec = z.output<typeof FaultRuleSchema>;
/** Where a `reset` rule drops the connection: after K request or K response body bytes. */
export type ResetSpec = NonNullable<RuleSpec["reset"]>;

/** A validated rule with its counters. */
export class Rule {
  /** The rule as validated. */
  readonly spec: RuleSpec;
  /** The rule's name in the counters. */
  readonly id: string;
  readonly #methods?: Set<string>;
  readonly #path?: RegExp;
  readonly #headers: Array<[string, RegExp]>;
  /** Requests that matched method, path and headers. */
  matched = 0;
  /** Requests the fault was applied to. */
  faulted = 0;
  /** Bearer tokens seen: first use and number of uses (for `expireToken`). */
  readonly tokens = new Map<string, { first: number; uses: number; expired: boolean }>();

  /** Validates `spec` (throws on a bad rule); `index` names a rule without `id`. */
  constructor(spec: FaultRule, index: number) {
    this.spec = FaultRuleSchema.parse(spec);
    this.id = this.spec.id ?? `rule${index}`;
    if (this.spec.method) {
      this.#methods = new Set(this.spec.method.toUpperCase().split("|").map((m) => m.trim()));
    }
    if (this.spec.path !== undefined) this.#path = new RegExp(this.spec.path);
    this.#headers = Object.entries(this.spec.matchHeaders ?? {}).map((
      [k, v],
    ) => [k.toLowerCase(), new RegExp(v)]);
  }

  /** True when the request matches method, path and headers (counts nothing). */
  matches(method: string, path: string, headers: Headers): boolean {
    if (this.#methods && !this.#methods.has(method)) return false;
    if (this.#path && !this.#path.test(path)) return false;
    return this.#headers.every(([name, re]) => {
      const value = headers.get(name);
      return value !== null && re.test(value);
    });
  }

  /** Counts a match; true when the fault applies to it. */
  fires(): boolean {
    const n = ++this.matched - (this.spec.skip ?? 0);
    if (n <= 0) return false;
    if (this.spec.every && n % this.spec.every !== 0) return false;
    if (this.spec.count !== undefined && this.faulted >= this.spec.count) return false;
    return true;
  }

  /** For `expireToken`: counts a match; true when the request's token has expired. */
  tokenExpired(authorization: string | null): boolean {
    this.matched++;
    const expiry = this.spec.expireToken!;
    const token = authorization?.match(/^Bearer\s+(\S+)/i)?.[1];
    if (!token) return false;
    const now = Date.now();
    let rec = this.tokens.get(token);
    if (!rec) this.tokens.set(token, rec = { first: now, uses: 0, expired: false });
    if (
      !rec.expired &&
      ((expiry.afterRequests !== undefined && rec.uses >= expiry.afterRequests) ||
        (expiry.afterMs !== undefined && now - rec.first >= expiry.afterMs))
    ) {
      rec.expired = true;
    }
    if (rec.expired && (this.spec.count === undefined || this.faulted < this.spec.count)) {
      return true;
    }
    rec.uses++;
    return false;
  }

  /** Zeroes the counters and forgets the tokens seen. */
  reset(): void {
    this.matched = 0;
    this.faulted = 0;
    this.tokens.clear();
  }
}

/** What the proxy decided for one request. */
export interface Decision {
  /** The rule whose fault applies (none: forward untouched). */
  rule?: Rule;
  /** `pass` forwards (possibly after a delay), `status` and `expire` answer, `reset` drops. */
  kind: "pass" | "status" | "expire" | "reset";
}

/**
 * Counts the request on every matching rule and picks the first one whose fault fires (the
 * rules after it only count the match).
 */
export function decide(rules: readonly Rule[], req: Request, path: string): Decision {
  let decision: Decision = { kind: "pass" };
  for (const rule of rules) {
    if (!rule.matches(req.method, path, req.headers)) continue;
    if (decision.rule) {
      rule.matched++;
      continue;
    }
    if (rule.spec.expireToken) {
      if (rule.tokenExpired(req.headers.get("authorization"))) {
        decision = { rule, kind: "expire" };
      }
    } else if (rule.fires()) {
      const kind = rule.spec.status !== undefined ? "status" : rule.spec.reset ? "reset" : "pass";
      decision = { rule, kind };
    }
    if (decision.rule) decision.rule.faulted++;
  }
  return decision;
}
