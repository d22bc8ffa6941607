/**
 * The fault proxy's public TCP port. `Deno.serve` cannot drop a connection (a handler can only
 * answer, and an erroring body still sends the headers first), so a small TCP relay stands in
 * front of the `Deno.serve` listener and drops a client's socket when the handler asks.
 * @module
 */

/**
 * The public TCP port: relays each connection to the `Deno.serve` listener and can drop one,
 * identified by the port its relayed connection comes from (the handler's `remoteAddr`).
 */
export class Relay {
  readonly #listener: Deno.TcpListener;
  readonly #innerPort: number;
  readonly #pairs = new Map<number, { client: Deno.TcpConn; inner: Deno.TcpConn }>();
  readonly #pending = new Set<Deno.TcpConn>();
  #closed = false;

  /** Listens on 127.0.0.1:`port` (0: a free one) and relays to 127.0.0.1:`innerPort`. */
  constructor(port: number, innerPort: number) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port });
    this.#innerPort = innerPort;
    this.#accept();
  }

  /** The public port. */
  get port(): number {
    return this.#listener.addr.port;
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) this.#relay(conn);
    } catch {
      // closed
    }
  }

  async #relay(client: Deno.TcpConn): Promise<void> {
    this.#pending.add(client);
    let inner: Deno.TcpConn;
    try {
      inner = await Deno.connect({ hostname: "127.0.0.1", port: this.#innerPort });
    } catch {
      this.#pending.delete(client);
      closeQuietly(client);
      return;
    }
    this.#pending.delete(client);
    if (this.#closed) {
      closeQuietly(client);
      closeQuietly(inner);
      return;
    }
    inner.setNoDelay(true);
    client.setNoDelay(true);
    const key = (inner.localAddr as Deno.NetAddr).port;
    const pair = { client, inner };
    this.#pairs.set(key, pair);
    await Promise.all([pump(client, inner), pump(inner, client)]);
    if (this.#pairs.get(key) === pair) this.#pairs.delete(key);
    closeQuietly(client);
    closeQuietly(inner);
  }

  /** Drops the client connection relayed from inner port `port`. */
  kill(port: number): void {
    const pair = this.#pairs.get(port);
    if (!pair) return;
    this.#pairs.delete(port);
    closeQuietly(pair.client);
    closeQuietly(pair.inner);
  }

  /** Stops listening and drops every connection. */
  close(): void {
    this.#closed = true;
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    for (const port of [...this.#pairs.keys()]) this.kill(port);
    for (const c of this.#pending) closeQuietly(c);
  }
}

async function pump(from: Deno.TcpConn, to: Deno.TcpConn): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      let off = 0;
      while (off < n) off += await to.write(buf.subarray(off, n));
    }
    await to.closeWrite();
  } catch {
    closeQuietly(from);
    closeQuietly(to);
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
