/**
 * The small HTTP interface the registry client is written against. The implementation
 * (`transport.ts`) uses `fetch` with per-host TLS clients, and `node:http(s)` where `fetch`
 * cannot do what a registry needs (a streamed body with a real Content-Length, skip-verify).
 * Tests may substitute their own.
 * @module
 */
import type { HostSettings } from "./options.ts";

/** A streamed request body whose length is known: sent with a real `Content-Length`. */
export interface SizedStream {
  stream: ReadableStream<Uint8Array>;
  length: number;
}

/** One HTTP request. */
export interface HttpRequest {
  method: string;
  /** Absolute URL. */
  url: string;
  headers?: Record<string, string>;
  body?: Uint8Array | string | SizedStream;
  signal?: AbortSignal;
  /** TLS and scheme settings of the target host. */
  host?: HostSettings;
}

/** One HTTP response; its body must be consumed or discarded. */
export interface HttpResponse {
  status: number;
  headers: Headers;
  /** The final URL (after redirects the transport followed). */
  url: string;
  body: ReadableStream<Uint8Array> | null;
  /** Reads the whole body, refusing more than `limit` bytes (default 4 MiB). */
  bytes(limit?: number): Promise<Uint8Array>;
  /** Reads the whole body as text, at most `limit` bytes (default 4 MiB). */
  text(limit?: number): Promise<string>;
  /** Drops the body, releasing the connection. */
  discard(): Promise<void>;
}

/** Sends HTTP requests. Network and TLS failures reject with a `KanikoError` coded `NETWORK` or `TLS`. */
export interface HttpTransport {
  send(request: HttpRequest): Promise<HttpResponse>;
}
