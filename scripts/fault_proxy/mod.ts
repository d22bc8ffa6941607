/**
 * A fault-injecting HTTP reverse proxy for registry tests: hono on `Deno.serve`, listening on
 * 127.0.0.1, in front of a real registry. Bodies stream both ways without buffering, `Location`
 * (and absolute `Link`) headers that point at the upstream are rewritten to point at the proxy,
 * and a small list of rules injects faults:
 *
 * - `status`: answer with this status instead of forwarding (an OCI error body; `retryAfter`
 *   adds `Retry-After`), e.g. a burst of 503s (`count`) or every Kth request (`every`);
 * - `reset: {request: K}`: forward the request but drop the client's connection (and abort the
 *   upstream request, so the registry sees a partial upload) after K bytes of the request body
 *   went upstream; `reset: {response: K}`: drop it after K bytes of the response body (K = 0:
 *   before the response headers, after the registry did the work);
 * - `delay`: wait this many ms before forwarding (alone: a slow response);
 * - `expireToken: {afterRequests, afterMs}`: a Bearer token the proxy has seen used
 *   `afterRequests` times (or first saw `afterMs` ms ago) is refused with 401 and the upstream's
 *   `WWW-Authenticate: Bearer …` challenge plus `scope` and `error="invalid_token"`, as
 *   distribution answers a token that expired mid-push.
 *
 * A rule matches by `method` (`PUT`, `PUT|PATCH`; any when absent), a `path` regex (on the
 * path without the query) and `matchHeaders` (header name → regex, e.g. a PATCH whose
 * `content-range` starts at 1 MiB). Every matching rule counts the request (`matched`); the first
 * matching rule whose selection fires (`skip` the first N matches, then every `every`th match,
 * at most `count` times) applies its fault and counts it (`faulted`).
 *
 * Dropping a connection is something `Deno.serve` cannot do (a handler can only answer, and an
 * erroring body still sends the headers first), so the public port is a small TCP relay in front
 * of the `Deno.serve` listener: the handler asks the relay to close the client's socket.
 *
 * Upstream requests go through `node:http(s)` by default (`forward: "node"`): it keeps the
 * client's `Content-Length` and tells when bytes were written, so a reset after K bytes is
 * exact. `forward: "fetch"` uses `fetch` with `duplex: "half"`, which sends request bodies chunked
 * (distribution 2.8 accepts chunked PATCH and PUT bodies).
 *
 * Use it imported (`startFaultProxy(target, rules)`, from here or from `scripts/fault_proxy.ts`),
 * or from the command line: `deno run -A scripts/fault_proxy.ts --target URL [--rules JSON]
 * [--port N] [--ca FILE] [--forward node|fetch]` (`--help` lists them), which prints
 * `{"url":…,"port":…}` and runs until SIGINT/SIGTERM.
 * At run time: `GET /__fault` gives the counters, `POST /__fault` with `{"rules":[…]}` (or a
 * bare array) replaces the rules and zeroes the counters, `DELETE /__fault` removes every rule.
 *
 * The parts: `rules.ts` (the rule schema, matching, the decision), `core.ts` (counters, log,
 * request handling), `forward.ts` (upstream requests, header rewriting, resets),
 * `streams.ts` (body plumbing), `responses.ts` (made-up answers), `relay.ts` (the public TCP
 * port), `server.ts` (`startFaultProxy`, the `/__fault` admin endpoint), `cli.ts` (the
 * command line).
 * @module
 */

export { startFaultProxy } from "./server.ts";
export { type FaultRule, FaultRuleSchema } from "./rules.ts";
export type {
  FaultProxy,
  FaultProxyOptions,
  ProxyStats,
  RequestLogEntry,
  RuleStats,
} from "./types.ts";
