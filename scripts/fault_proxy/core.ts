/**
 * The fault proxy's request handling: counts and logs each request, lets the rules decide, and
 * answers with the fault or forwards upstream.
 * @module
 */
import type { Forwarder } from "./forward.ts";
import { decide, type FaultRule, Rule } from "./rules.ts";
import {
  drain,
  errorResponse,
  errText,
  expiredResponse,
  injectedStatus,
  sleep,
} from "./responses.ts";
import type { FaultProxyOptions, ProxyStats, RequestLogEntry } from "./types.ts";

/** The rules, the counters and the request log of one proxy, and its request handler. */
export class ProxyCore {
  readonly #upstream: Forwarder;
  readonly #logLimit: number;
  #rules: Rule[] = [];
  #requests = 0;
  #log: RequestLogEntry[] = [];

  /** Handles requests by way of `upstream`. */
  constructor(upstream: Forwarder, options: FaultProxyOptions) {
    this.#upstream = upstream;
    this.#logLimit = options.logLimit ?? 10000;
  }

  /** Replaces the rules (throws on a bad one) and zeroes every counter. */
  setRules(rules: FaultRule[]): void {
    this.#rules = rules.map((r, i) => new Rule(r, i));
    this.resetStats();
  }

  /** Zeroes the counters and the log, keeping the rules. */
  resetStats(): void {
    this.#requests = 0;
    this.#log = [];
    for (const r of this.#rules) r.reset();
  }

  /** A snapshot of the counters and the request log. */
  stats(): ProxyStats {
    return {
      requests: this.#requests,
      rules: this.#rules.map((r) => ({ id: r.id, matched: r.matched, faulted: r.faulted })),
      log: this.#log.map((e) => ({ ...e })),
    };
  }

  /** Answers one request that came on the relayed connection from port `clientPort`. */
  async handle(req: Request, clientPort: number): Promise<Response> {
    const url = new URL(req.url);
    this.#requests++;
    const entry: RequestLogEntry = {
      method: req.method,
      path: url.pathname,
      status: 0,
      forwarded: 0,
    };
    const digest = url.searchParams.get("digest");
    if (digest) entry.digest = digest;
    if (this.#log.length < this.#logLimit) this.#log.push(entry);
    const decision = decide(this.#rules, req, url.pathname);
    const spec = decision.rule?.spec;
    if (decision.rule) entry.fault = decision.rule.id;
    if (spec?.delay) await sleep(spec.delay);
    if (decision.kind === "status") {
      if (spec!.drain !== false) await drain(req.body);
      const res = injectedStatus(spec!, decision.rule!.id);
      entry.status = res.status;
      return res;
    }
    if (decision.kind === "expire") {
      if (spec!.drain !== false) await drain(req.body);
      const res = expiredResponse(await this.#upstream.challenge(), req.method, url.pathname);
      entry.status = res.status;
      return res;
    }
    const reset = decision.kind === "reset" ? spec!.reset : undefined;
    try {
      const sent = this.#upstream.relay.sentToClient(clientPort);
      return await this.#upstream.forward({ req, url, entry, clientPort, reset, sent });
    } catch (err) {
      entry.status = 502;
      return errorResponse(502, "UNAVAILABLE", `fault proxy: upstream failed: ${errText(err)}`);
    }
  }
}
