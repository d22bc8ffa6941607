/**
 * Serving the hono app: plain HTTP with `Deno.serve(app.fetch)`; TLS through `node:https`
 * (Deno.serve cannot request client certificates), adapted to `app.fetch` with the verified
 * client certificate passed as a binding. Streaming responses (watches, followed logs) are
 * written chunk by chunk; when the response stream errors (a cut watch) the socket is destroyed,
 * and when the client goes away the request's signal aborts.
 * @module
 */
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import type { Bindings } from "./api.ts";

/** A function that answers requests, like `app.fetch`. */
export type FetchHandler = (req: Request, env: Bindings) => Response | Promise<Response>;

/** A running server. */
export interface Served {
  /** `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`. */
  url: string;
  close(): Promise<void>;
}

/** TLS material (PEM). */
export interface TlsOptions {
  cert: string;
  key: string;
  /** CA whose client certificates are accepted (verified; unverified ones are ignored). */
  clientCa?: string;
}

/** Serves plain HTTP on 127.0.0.1 (free port). */
export function servePlain(handler: FetchHandler): Served {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    async (req, info) => {
      // our own signal (never touching req.signal): aborted when the response is delivered or
      // the client went away
      const ac = new AbortController();
      info.completed.finally(() => ac.abort());
      const body = req.method === "GET" || req.method === "HEAD"
        ? undefined
        : await req.arrayBuffer();
      const copy = new Request(req.url, {
        method: req.method,
        headers: req.headers,
        body,
        signal: ac.signal,
      });
      return handler(copy, {});
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    async close() {
      ac.abort();
      await server.finished;
    },
  };
}

function clientCert(req: IncomingMessage): Bindings["clientCert"] {
  const sock = req.socket as TLSSocket;
  if (!sock.authorized) return undefined;
  const c = sock.getPeerCertificate();
  if (!c?.subject?.CN) return undefined;
  const o = c.subject.O as string | string[] | undefined;
  return { cn: c.subject.CN as string, orgs: o === undefined ? [] : [o].flat() };
}

async function toRequest(req: IncomingMessage, signal: AbortSignal): Promise<Request> {
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(", ") : v);
  }
  let body: Uint8Array<ArrayBuffer> | undefined;
  if (req.method !== "GET" && req.method !== "HEAD") {
    const chunks: Uint8Array[] = [];
    for await (const c of req) chunks.push(c as Uint8Array);
    body = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let off = 0;
    for (const c of chunks) {
      body.set(c, off);
      off += c.length;
    }
  }
  return new Request(`https://${req.headers.host ?? "localhost"}${req.url}`, {
    method: req.method,
    headers,
    body,
    signal,
  });
}

async function respond(handler: FetchHandler, req: IncomingMessage, res: ServerResponse) {
  const ac = new AbortController();
  res.on("close", () => ac.abort());
  const response = await handler(await toRequest(req, ac.signal), { clientCert: clientCert(req) });
  res.writeHead(response.status, Object.fromEntries(response.headers));
  res.flushHeaders();
  if (!response.body) return void res.end();
  try {
    for await (const chunk of response.body) {
      if (res.destroyed) break;
      res.write(chunk);
    }
    res.end();
  } catch {
    res.destroy();
  }
}

/** Serves HTTPS on 127.0.0.1 (free port), requesting (not requiring) client certificates. */
export function serveTls(handler: FetchHandler, tls: TlsOptions): Promise<Served> {
  const sockets = new Set<import("node:net").Socket>();
  const server = https.createServer({
    cert: tls.cert,
    key: tls.key,
    ca: tls.clientCa,
    requestCert: tls.clientCa !== undefined,
    rejectUnauthorized: false,
  }, (req, res) => {
    respond(handler, req, res).catch(() => res.destroy());
  });
  server.on("secureConnection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const addr = server.address() as { port: number };
      resolve({
        url: `https://127.0.0.1:${addr.port}`,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
