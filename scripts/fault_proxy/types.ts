/**
 * The fault proxy's public types: its options, its handle, and the counters it keeps.
 * @module
 */
import type { FaultRule } from "./rules.ts";

/** Counters of one rule. */
export interface RuleStats {
  id: string;
  /** Requests that matched method and path. */
  matched: number;
  /** Requests the fault was applied to. */
  faulted: number;
}

/** One request the proxy saw. */
export interface RequestLogEntry {
  method: string;
  path: string;
  /** Status sent to the client; 0 when the connection was dropped. */
  status: number;
  /** Id of the rule whose fault was applied. */
  fault?: string;
  /** Request body bytes forwarded upstream. */
  forwarded: number;
  /** The `digest` query parameter (blob upload completion), when present. */
  digest?: string;
}

/** Counters of the proxy. */
export interface ProxyStats {
  requests: number;
  rules: RuleStats[];
  log: RequestLogEntry[];
}

/** Options of `startFaultProxy`. */
export interface FaultProxyOptions {
  /** Port to listen on (127.0.0.1); 0 (default) picks a free one. */
  port?: number;
  /** PEM CA certificate file trusted for an `https://` upstream. */
  caFile?: string;
  /** How requests go upstream (default `node`). */
  forward?: "node" | "fetch";
  /** Most entries kept in the request log (default 10000). */
  logLimit?: number;
}

/** A running proxy. */
export interface FaultProxy {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** `127.0.0.1:PORT`, for image references. */
  host: string;
  port: number;
  /** Replaces the rules and zeroes every counter. */
  setRules(rules: FaultRule[]): void;
  /** A snapshot of the counters and the request log. */
  stats(): ProxyStats;
  /** Zeroes the counters and the log, keeping the rules. */
  resetStats(): void;
  /** Stops listening and closes every connection. */
  stop(): Promise<void>;
}
