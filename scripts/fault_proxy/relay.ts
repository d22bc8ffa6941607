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
  readonly #pairs = new Map<number, Pair>();
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
    const pair: Pair = { client, inner, toClient: 0, toInner: 0 };
    this.#pairs.set(key, pair);
    await Promise.all([
      pump(client, inner, (n) => pair.toInner += n),
      pump(inner, client, (n) => pair.toClient += n),
    ]);
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

  /** Bytes relayed so far to the client of inner port `port` (0 for an unknown port). */
  sentToClient(port: number): number {
    return this.#pairs.get(port)?.toClient ?? 0;
  }

  /**
   * Drops the client connection of inner port `port` once at least `total` bytes have been
   * relayed to it and nothing has moved either way for `quietMs`: checked twice with the event
   * loop polled in between, so what the handler already wrote (the head, the first K body bytes)
   * reaches the client first even on a loaded machine. Gives up waiting after 10 s.
   */
  killAfter(port: number, total: number, quietMs: number, then: () => void = () => {}): void {
    const pair = this.#pairs.get(port);
    if (!pair) return then();
    const deadline = Date.now() + 10_000;
    let seen = -1;
    let quietChecks = 0;
    const check = () => {
      const moved = pair.toClient + pair.toInner;
      quietChecks = moved === seen && pair.toClient >= total ? quietChecks + 1 : 0;
      seen = moved;
      if (quietChecks >= 2 || Date.now() > deadline) {
        this.kill(port);
        then();
      } else setTimeout(check, quietMs / 2);
    };
    setTimeout(check, quietMs / 2);
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

interface Pair {
  client: Deno.TcpConn;
  inner: Deno.TcpConn;
  /** Bytes relayed so far each way. */
  toClient: number;
  toInner: number;
}

async function pump(
  from: Deno.TcpConn,
  to: Deno.TcpConn,
  count: (n: number) => void,
): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      count(n);
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
