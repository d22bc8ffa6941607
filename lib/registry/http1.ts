/**
 * A minimal HTTP/1.1 client for one kind of request: a streamed body of known length, sent with
 * a real `Content-Length` over a connection of its own (`Deno.connect` / `Deno.connectTls`).
 * `fetch` sends such bodies chunked, and `node:http(s)` needs ~60 MB more memory for the same
 * upload; this writes the file straight to the socket with backpressure. The response is read
 * while the body is written, so an early answer (a 401, a 416) ends the upload at once.
 * @module
 */
import { KanikoError } from "../errors.ts";

/** TLS settings of a connection (absent for plain HTTP). */
export interface Http1Tls {
  caCerts?: string[];
  cert?: string;
  key?: string;
}

/** A request with a sized streamed body. */
export interface Http1Request {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body: ReadableStream<Uint8Array>;
  length: number;
  tls?: Http1Tls;
  /** Milliseconds without progress (or waiting for the answer) before failing. */
  idleTimeout: number;
  signal?: AbortSignal;
}

/** The response: status, headers and a streamed body. */
export interface Http1Response {
  status: number;
  headers: Headers;
  body: ReadableStream<Uint8Array>;
}

const HEADER_LIMIT = 64 * 1024;

/** Sends the request and resolves with the response once its headers have arrived. */
export async function sendHttp1(request: Http1Request): Promise<Http1Response> {
  const { url } = request;
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  const hostname = url.hostname.replace(/^\[|\]$/g, "");
  const conn: Deno.Conn = request.tls
    ? await Deno.connectTls({ hostname, port, ...request.tls })
    : await Deno.connect({ hostname, port });
  const watchdog = new Watchdog(request.idleTimeout, () => closeQuietly(conn));
  const onAbort = () => closeQuietly(conn);
  request.signal?.addEventListener("abort", onAbort, { once: true });
  const reader = new SocketReader(conn, watchdog);
  const response = readHead(reader);
  const sent = writeRequest(conn, request, watchdog);
  try {
    // Whichever comes first: the whole body sent, or an (early) answer.
    const first = await Promise.race([sent.then(() => undefined), response]);
    const head = first ?? await response;
    sent.catch(() => {}); // an answer arrived; a failed write no longer matters
    return { ...head, body: bodyStream(reader, head, () => finish()) };
  } catch (err) {
    // A write that failed because the server answered and closed: prefer the answer, which has
    // arrived by then or never will.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), 1000));
    const head = await Promise.race([response, late]).catch(() => undefined);
    clearTimeout(timer);
    if (head) return { ...head, body: bodyStream(reader, head, () => finish()) };
    finish();
    throw err;
  }

  function finish() {
    watchdog.stop();
    request.signal?.removeEventListener("abort", onAbort);
    closeQuietly(conn);
  }
}

/** Closes `conn` unless it is closed already (by an abort, the watchdog, or the end). */
function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

async function writeRequest(conn: Deno.Conn, request: Http1Request, watchdog: Watchdog) {
  const lines = [`${request.method} ${request.url.pathname}${request.url.search} HTTP/1.1`];
  lines.push(`host: ${request.url.host}`);
  for (const [k, v] of Object.entries(request.headers)) {
    const key = k.toLowerCase();
    if (key !== "host" && key !== "content-length" && key !== "connection") {
      lines.push(`${k}: ${v}`);
    }
  }
  lines.push(`content-length: ${request.length}`, "connection: close", "", "");
  const writer = conn.writable.getWriter();
  await writer.write(new TextEncoder().encode(lines.join("\r\n")));
  let sent = 0;
  for await (const chunk of request.body) {
    sent += chunk.byteLength;
    if (sent > request.length) throw new KanikoError("request body is longer than its length");
    await writer.write(chunk);
    watchdog.kick();
  }
  if (sent !== request.length) {
    throw new KanikoError(`request body ended after ${sent} of ${request.length} bytes`);
  }
  writer.releaseLock();
  watchdog.kick();
}

/** Fails a connection that makes no progress for `ms`; once stopped, stays stopped. */
export class Watchdog {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  constructor(private ms: number, private onTimeout: () => void) {
    this.kick();
  }
  kick() {
    // A write still finishing after the answer was read must not re-arm a finished connection.
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.fired = true;
      this.onTimeout();
    }, this.ms);
  }
  stop() {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }
  fired = false;
}

/** Buffered reads from the socket. */
class SocketReader {
  #buf = new Uint8Array(0);
  constructor(private conn: Deno.Conn, private watchdog: Watchdog) {}

  /** More bytes (appended to the buffer); false at end of stream. */
  async fill(): Promise<boolean> {
    const chunk = new Uint8Array(64 * 1024);
    let n: number | null;
    try {
      n = await this.conn.read(chunk);
    } catch (err) {
      if (this.watchdog.fired) throw new Error("timed out: no progress", { cause: err });
      throw err;
    }
    if (n === null) return false;
    this.watchdog.kick();
    const next = new Uint8Array(this.#buf.byteLength + n);
    next.set(this.#buf);
    next.set(chunk.subarray(0, n), this.#buf.byteLength);
    this.#buf = next;
    return true;
  }

  get buffered(): Uint8Array {
    return this.#buf;
  }

  /** Removes and returns the first `n` buffered bytes. */
  take(n: number): Uint8Array {
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }
}

interface Head {
  status: number;
  headers: Headers;
}

async function readHead(reader: SocketReader): Promise<Head> {
  for (;;) {
    const end = indexOfCrlfCrlf(reader.buffered);
    if (end >= 0) {
      const text = new TextDecoder().decode(reader.take(end + 4));
      const head = parseHead(text);
      if (head.status >= 100 && head.status < 200) continue; // 100 Continue and friends
      return head;
    }
    if (reader.buffered.byteLength > HEADER_LIMIT) throw new Error("response header too large");
    if (!await reader.fill()) throw new Error("connection closed before the response");
  }
}

function parseHead(text: string): Head {
  const [statusLine, ...lines] = text.split("\r\n").filter((l) => l.length > 0);
  const m = statusLine?.match(/^HTTP\/1\.[01] (\d{3})/);
  if (!m) throw new Error(`malformed response status line: ${statusLine?.slice(0, 80)}`);
  const headers = new Headers();
  for (const line of lines) {
    const i = line.indexOf(":");
    if (i > 0) headers.append(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return { status: Number(m[1]), headers };
}

function indexOfCrlfCrlf(buf: Uint8Array): number {
  for (let i = 0; i + 3 < buf.byteLength; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}

/** The response body, framed by Content-Length, chunked encoding, or the end of the stream. */
function bodyStream(
  reader: SocketReader,
  head: Head,
  done: () => void,
): ReadableStream<Uint8Array> {
  const chunked = /\bchunked\b/i.test(head.headers.get("transfer-encoding") ?? "");
  const length = head.headers.get("content-length");
  let left = chunked ? 0 : length !== null ? Number(length) : Infinity;
  if (head.status === 204 || head.status === 304) left = 0;
  let chunkedDone = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const bytes = chunked ? await nextChunk() : await nextBytes();
        if (bytes === undefined) {
          done();
          controller.close();
        } else controller.enqueue(bytes);
      } catch (err) {
        done();
        controller.error(err);
      }
    },
    cancel: () => done(),
  });

  async function nextBytes(): Promise<Uint8Array | undefined> {
    if (left <= 0) return undefined;
    if (reader.buffered.byteLength === 0 && !await reader.fill()) {
      if (left === Infinity) return undefined;
      throw new Error("connection closed in the middle of the response body");
    }
    const n = Math.min(left, reader.buffered.byteLength);
    left -= n;
    return reader.take(n).slice();
  }

  async function nextChunk(): Promise<Uint8Array | undefined> {
    if (chunkedDone) return undefined;
    if (left === 0) {
      const line = await readLine(reader);
      left = parseInt(line.split(";")[0], 16);
      if (!Number.isFinite(left)) throw new Error("malformed chunked response");
      if (left === 0) {
        while ((await readLine(reader)) !== "") { /* trailers */ }
        chunkedDone = true;
        return undefined;
      }
    }
    const bytes = await nextBytes();
    if (left === 0) await readLine(reader);
    return bytes;
  }
}

async function readLine(reader: SocketReader): Promise<string> {
  for (;;) {
    const buf = reader.buffered;
    for (let i = 0; i + 1 < buf.byteLength; i++) {
      if (buf[i] === 13 && buf[i + 1] === 10) {
        return new TextDecoder().decode(reader.take(i + 2).subarray(0, i));
      }
    }
    if (!await reader.fill()) throw new Error("connection closed in the middle of the response");
  }
}
