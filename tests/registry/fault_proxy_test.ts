/**
 * Unit tests of scripts/fault_proxy.ts against a tiny local upstream (hono on Deno.serve): every
 * fault type, Location rewriting, the admin endpoint, and streaming of 64 MiB both ways.
 */
import assert from "node:assert/strict";
import http from "node:http";
import { createHash } from "node:crypto";
import { Hono } from "hono";
import { concatBytes } from "../../lib/bytes.ts";
import { type FaultProxy, type FaultRule, startFaultProxy } from "../../scripts/fault_proxy.ts";
import { readUntil } from "../_helpers.ts";

const SCRIPT = new URL("../../scripts/fault_proxy.ts", import.meta.url).pathname;
const OPTS = { sanitizeOps: false, sanitizeResources: false };
const FORWARDERS = ["node", "fetch"] as const;

/** What the upstream saw of one body-carrying request. */
interface Upload {
  path: string;
  bytes: number;
  sha256: string;
  complete: boolean;
  contentLength: string | null;
  transferEncoding: string | null;
}

class Upstream {
  uploads: Upload[] = [];
  hits = 0;
  /** When set, `/big` sends its first MiB and then waits for this. */
  gate?: () => Promise<void>;
  server: Deno.HttpServer<Deno.NetAddr>;
  url: string;

  constructor() {
    const app = new Hono();
    app.get("/v2/", (c) => {
      c.header(
        "www-authenticate",
        `Bearer realm="http://127.0.0.1:1/token",service="test-registry"`,
      );
      return c.json(
        { errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] },
        401,
      );
    });
    app.get("/hello", (c) => {
      this.hits++;
      c.header("x-upstream", "yes");
      return c.text("hello");
    });
    app.get("/blob", () => {
      this.hits++;
      return new Response(null, {
        status: 200,
        headers: { "content-length": "1234", "docker-content-digest": "sha256:abc" },
      });
    });
    app.get("/big", (c) => {
      this.hits++;
      const size = Number(c.req.query("size"));
      const body = this.gate ? gated(pattern(size), 1024 * 1024, this.gate) : pattern(size);
      return new Response(body, {
        headers: { "content-length": String(size), "content-type": "application/octet-stream" },
      });
    });
    app.post("/v2/repo/blobs/uploads/", (c) => {
      this.hits++;
      c.header("location", `${this.url}/v2/repo/blobs/uploads/u1?_state=s`);
      c.header("link", `<${this.url}/v2/repo/tags/list?n=1&last=a>; rel="next"`);
      c.header("range", "0-0");
      return c.body(null, 202);
    });
    app.on(["PUT", "PATCH"], "*", async (c) => {
      this.hits++;
      const up: Upload = {
        path: c.req.path,
        bytes: 0,
        sha256: "",
        complete: false,
        contentLength: c.req.header("content-length") ?? null,
        transferEncoding: c.req.header("transfer-encoding") ?? null,
      };
      this.uploads.push(up);
      const hash = createHash("sha256");
      try {
        for await (const chunk of c.req.raw.body ?? []) {
          up.bytes += chunk.byteLength; // live: tests watch it grow
          hash.update(chunk);
        }
        up.complete = true;
      } catch {
        return c.body(null, 400);
      }
      up.sha256 = hash.digest("hex");
      c.header("location", `${this.url}/v2/repo/blobs/sha256:x`);
      return c.json({ bytes: up.bytes, sha256: up.sha256 }, 201);
    });
    this.server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
    this.url = `http://127.0.0.1:${this.server.addr.port}`;
  }

  async stop() {
    await this.server.shutdown();
  }
}

/** `size` bytes of a repeating pattern, produced lazily in 1 MiB pieces. */
function pattern(size: number): ReadableStream<Uint8Array> {
  let left = size;
  const block = new Uint8Array(1024 * 1024).map((_, i) => (i * 7 + 3) & 0xff);
  return new ReadableStream({
    pull(c) {
      if (left <= 0) return c.close();
      const n = Math.min(left, block.byteLength);
      c.enqueue(block.slice(0, n));
      left -= n;
    },
  }, { highWaterMark: 0 });
}

function patternSha(size: number): string {
  const hash = createHash("sha256");
  const block = new Uint8Array(1024 * 1024).map((_, i) => (i * 7 + 3) & 0xff);
  for (let left = size; left > 0; left -= block.byteLength) {
    hash.update(block.subarray(0, Math.min(left, block.byteLength)));
  }
  return hash.digest("hex");
}

interface NodeResult {
  status?: number;
  headers?: http.IncomingHttpHeaders;
  body?: Uint8Array;
  bytes: number;
  /** Set when the connection failed (before or after the headers). */
  error?: string;
}

/** A request with node:http (real Content-Length, streamed body); never rejects. */
function nodeRequest(
  url: string,
  method: string,
  options: {
    body?: ReadableStream<Uint8Array>;
    length?: number;
    headers?: Record<string, string>;
  } = {},
  keep = true,
): Promise<NodeResult> {
  const u = new URL(url);
  const headers: Record<string, string> = { ...options.headers };
  if (options.length !== undefined) headers["content-length"] = String(options.length);
  const agent = new http.Agent({ keepAlive: false });
  return new Promise((resolve) => {
    const result: NodeResult = { bytes: 0 };
    const chunks: Uint8Array[] = [];
    const done = () => {
      if (keep && result.status !== undefined) {
        result.body = concatBytes(chunks, result.bytes);
      }
      agent.destroy();
      resolve(result);
    };
    const req = http.request({
      hostname: u.hostname,
      port: u.port,
      path: u.pathname + u.search,
      method,
      headers,
      agent,
    }, (res) => {
      result.status = res.statusCode;
      result.headers = res.headers;
      res.on("data", (c: Uint8Array) => {
        result.bytes += c.byteLength;
        if (keep) chunks.push(c);
      });
      res.on("end", done);
      res.on("error", (e) => {
        result.error = e.message;
        done();
      });
      res.on("aborted", () => result.error ??= "aborted");
    });
    req.on("error", (e) => {
      result.error = `${(e as { code?: string }).code ?? ""} ${e.message}`;
      done();
    });
    if (options.body) {
      (async () => {
        try {
          for await (const chunk of options.body!) {
            if (!req.write(chunk)) await new Promise((r) => req.once("drain", r));
          }
          req.end();
        } catch {
          // the request failed; reported through its error event
        }
      })();
    } else req.end();
  });
}

async function withProxy(
  rules: FaultRule[],
  fn: (proxy: FaultProxy, upstream: Upstream) => Promise<void>,
  forward: "node" | "fetch" = "node",
): Promise<void> {
  const upstream = new Upstream();
  const proxy = await startFaultProxy(upstream.url, rules, { forward });
  try {
    await fn(proxy, upstream);
  } finally {
    await proxy.stop();
    await upstream.stop();
  }
}

for (const forward of FORWARDERS) {
  Deno.test(
    `[${forward}] passes requests through and rewrites Location and Link`,
    OPTS,
    async () => {
      await withProxy([], async (proxy, upstream) => {
        const hello = await fetch(`${proxy.url}/hello`);
        assert.equal(hello.status, 200);
        assert.equal(hello.headers.get("x-upstream"), "yes");
        assert.equal(await hello.text(), "hello");

        const head = await nodeRequest(`${proxy.url}/blob`, "HEAD");
        assert.equal(head.status, 200);
        assert.equal(head.headers?.["content-length"], "1234");
        assert.equal(head.headers?.["docker-content-digest"], "sha256:abc");

        const post = await fetch(`${proxy.url}/v2/repo/blobs/uploads/`, { method: "POST" });
        assert.equal(post.status, 202);
        assert.equal(
          post.headers.get("location"),
          `${proxy.url}/v2/repo/blobs/uploads/u1?_state=s`,
        );
        assert.equal(
          post.headers.get("link"),
          `<${proxy.url}/v2/repo/tags/list?n=1&last=a>; rel="next"`,
        );
        assert.equal(post.headers.get("range"), "0-0");
        await post.body?.cancel();

        const put = await nodeRequest(`${proxy.url}/v2/repo/blobs/uploads/u1?digest=x`, "PUT", {
          body: pattern(3_000_000),
          length: 3_000_000,
        });
        assert.equal(put.status, 201);
        assert.equal(put.headers?.["location"], `${proxy.url}/v2/repo/blobs/sha256:x`);
        const up = upstream.uploads.at(-1)!;
        assert.equal(up.bytes, 3_000_000);
        assert.equal(up.sha256, patternSha(3_000_000));
        if (forward === "node") assert.equal(up.contentLength, "3000000");
        else assert.equal(up.transferEncoding, "chunked"); // fetch re-frames streamed bodies

        const stats = proxy.stats();
        assert.equal(stats.requests, 4);
        assert.deepEqual(stats.log.map((e) => `${e.method} ${e.path} ${e.status}`), [
          "GET /hello 200",
          "HEAD /blob 200",
          "POST /v2/repo/blobs/uploads/ 202",
          "PUT /v2/repo/blobs/uploads/u1 201",
        ]);
      }, forward);
    },
  );

  Deno.test(
    `[${forward}] reset after K request bytes: upstream sees a partial body`,
    OPTS,
    async () => {
      const K = 1_000_000;
      await withProxy(
        [{ id: "cut", method: "PATCH", reset: { request: K } }],
        async (proxy, up) => {
          const res = await nodeRequest(`${proxy.url}/v2/repo/blobs/uploads/u1`, "PATCH", {
            body: pattern(8_000_000),
            length: 8_000_000,
          });
          assert.equal(res.status, undefined, "no response may reach the client");
          assert.ok(res.error, "the client sees a connection error");
          await waitFor(() =>
            up.uploads.length === 1 && !up.uploads[0].complete && up.uploads[0].bytes > 0
          );
          await new Promise((r) => setTimeout(r, 300));
          const seen = up.uploads[0];
          assert.equal(seen.complete, false, "the upstream request is aborted");
          assert.equal(seen.bytes, K, "exactly K bytes reach the upstream");
          assert.deepEqual(proxy.stats().rules, [{ id: "cut", matched: 1, faulted: 1 }]);
          assert.equal(proxy.stats().log[0].status, 0);
          assert.equal(proxy.stats().log[0].forwarded, K);

          // The next request goes through.
          const again = await nodeRequest(`${proxy.url}/v2/repo/blobs/uploads/u1`, "PUT", {
            body: pattern(10),
            length: 10,
          });
          assert.equal(again.status, 201);
        },
        forward,
      );
    },
  );

  Deno.test(`[${forward}] reset after K response bytes`, OPTS, async () => {
    await withProxy(
      [{ method: "GET", path: "^/big$", reset: { response: 100_000 } }],
      async (proxy) => {
        const res = await nodeRequest(`${proxy.url}/big?size=5000000`, "GET");
        assert.equal(res.status, 200, `the headers arrive (client saw: ${res.error})`);
        assert.equal(res.headers?.["content-length"], "5000000");
        assert.ok(res.error, "the body is cut");
        assert.equal(res.bytes, 100_000);
      },
      forward,
    );
  });

  Deno.test(`[${forward}] reset before the response: the upstream did the work`, OPTS, async () => {
    await withProxy([{ method: "PUT", reset: { response: 0 }, count: 1 }], async (proxy, up) => {
      const res = await nodeRequest(`${proxy.url}/v2/repo/blobs/uploads/u1`, "PUT", {
        body: pattern(1000),
        length: 1000,
      });
      assert.equal(res.status, undefined);
      assert.ok(res.error);
      assert.equal(up.uploads.length, 1);
      assert.equal(up.uploads[0].complete, true);
      const second = await nodeRequest(`${proxy.url}/v2/repo/blobs/uploads/u1`, "PUT", {
        body: pattern(1000),
        length: 1000,
      });
      assert.equal(second.status, 201);
    }, forward);
  });
}

Deno.test("status burst: the first N matching requests", OPTS, async () => {
  await withProxy([{ id: "burst", method: "GET", path: "^/hello$", status: 503, count: 2 }], async (
    proxy,
    upstream,
  ) => {
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${proxy.url}/hello`);
      statuses.push(res.status);
      const body = await res.text();
      if (res.status === 503) assert.match(body, /"code":"UNAVAILABLE"/);
    }
    assert.deepEqual(statuses, [503, 503, 200, 200]);
    assert.equal(upstream.hits, 2);
    assert.deepEqual(proxy.stats().rules, [{ id: "burst", matched: 4, faulted: 2 }]);
    // Other methods and paths do not match.
    assert.equal((await nodeRequest(`${proxy.url}/blob`, "HEAD")).status, 200);
    assert.equal(proxy.stats().rules[0].matched, 4);
  });
});

Deno.test("status: every Kth after skip, with the body drained", OPTS, async () => {
  await withProxy([{ method: "PUT|PATCH", status: 500, skip: 1, every: 2 }], async (proxy, up) => {
    const statuses = [];
    for (let i = 0; i < 6; i++) {
      const res = await nodeRequest(`${proxy.url}/v2/repo/blobs/uploads/u${i}`, "PATCH", {
        body: pattern(200_000),
        length: 200_000,
      });
      statuses.push(res.status);
    }
    // Match 1 is skipped; of the rest, every second one (matches 3 and 5) fails.
    assert.deepEqual(statuses, [201, 201, 500, 201, 500, 201]);
    assert.equal(up.uploads.length, 4);
  });
});

Deno.test("rules can match request headers", OPTS, async () => {
  await withProxy(
    [{ method: "PATCH", matchHeaders: { "content-range": "^100-" }, status: 503 }],
    async (
      proxy,
    ) => {
      const patch = (range?: string) =>
        nodeRequest(`${proxy.url}/v2/repo/blobs/uploads/u1`, "PATCH", {
          body: pattern(100),
          length: 100,
          headers: range ? { "content-range": range } : {},
        });
      assert.equal((await patch("0-99")).status, 201);
      assert.equal((await patch("100-199")).status, 503);
      assert.equal((await patch()).status, 201);
      assert.deepEqual(proxy.stats().rules[0], { id: "rule0", matched: 1, faulted: 1 });
    },
  );
});

Deno.test("429 with Retry-After; 4xx statuses carry OCI error codes", OPTS, async () => {
  await withProxy([
    { method: "GET", path: "^/hello$", status: 429, retryAfter: 1, count: 1 },
    { method: "HEAD", status: 403 },
  ], async (proxy) => {
    const res = await fetch(`${proxy.url}/hello`);
    assert.equal(res.status, 429);
    assert.equal(res.headers.get("retry-after"), "1");
    assert.match(await res.text(), /TOOMANYREQUESTS/);
    assert.equal((await fetch(`${proxy.url}/hello`)).status, 200);
    const denied = await fetch(`${proxy.url}/blob`, { method: "HEAD" });
    assert.equal(denied.status, 403);
  });
});

Deno.test("delay before forwarding", OPTS, async () => {
  await withProxy([{ path: "^/hello$", delay: 400 }], async (proxy) => {
    const t0 = performance.now();
    const res = await fetch(`${proxy.url}/hello`);
    assert.equal(await res.text(), "hello");
    assert.ok(performance.now() - t0 >= 380, "the response is delayed");
    assert.equal(proxy.stats().rules[0].faulted, 1);
  });
});

Deno.test("expireToken after N uses: 401 with the upstream's challenge", OPTS, async () => {
  await withProxy([{ id: "exp", path: "^/v2/.+", expireToken: { afterRequests: 2 } }], async (
    proxy,
    upstream,
  ) => {
    const get = (token?: string, method = "PUT") =>
      nodeRequest(`${proxy.url}/v2/my/repo/blobs/uploads/x`, method, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
        body: pattern(1000),
        length: 1000,
      });
    assert.equal((await get("A")).status, 201);
    assert.equal((await get("A")).status, 201);
    const refused = await get("A");
    assert.equal(refused.status, 401);
    assert.equal(
      refused.headers?.["www-authenticate"],
      `Bearer realm="http://127.0.0.1:1/token",service="test-registry",` +
        `scope="repository:my/repo:pull,push",error="invalid_token"`,
    );
    assert.match(new TextDecoder().decode(refused.body), /UNAUTHORIZED/);
    assert.equal((await get("A")).status, 401, "an expired token stays expired");
    assert.equal((await get("B")).status, 201, "a fresh token works");
    assert.equal((await get(undefined)).status, 201, "anonymous requests are not touched");
    assert.equal(upstream.uploads.length, 4);
    assert.deepEqual(proxy.stats().rules, [{ id: "exp", matched: 6, faulted: 2 }]);
    const head = await nodeRequest(`${proxy.url}/v2/my/repo/manifests/latest`, "HEAD", {
      headers: { authorization: "Bearer A" },
    });
    assert.match(String(head.headers?.["www-authenticate"]), /scope="repository:my\/repo:pull",/);
  });
});

Deno.test("expireToken after T ms", OPTS, async () => {
  await withProxy([{ path: "^/hello$", expireToken: { afterMs: 300 } }], async (proxy) => {
    const get = () => fetch(`${proxy.url}/hello`, { headers: { authorization: "Bearer T" } });
    const first = await get();
    assert.equal(first.status, 200);
    await first.body?.cancel();
    await new Promise((r) => setTimeout(r, 350));
    const later = await get();
    assert.equal(later.status, 401);
    assert.match(later.headers.get("www-authenticate") ?? "", /error="invalid_token"/);
    await later.body?.cancel();
  });
});

Deno.test("admin endpoint: rules set at run time, counters read", OPTS, async () => {
  await withProxy([], async (proxy) => {
    const set = await fetch(`${proxy.url}/__fault`, {
      method: "POST",
      body: JSON.stringify({ rules: [{ id: "x", path: "^/hello$", status: 502, count: 1 }] }),
    });
    assert.equal(set.status, 200);
    await set.body?.cancel();
    assert.equal((await fetch(`${proxy.url}/hello`)).status, 502);
    const hello = await fetch(`${proxy.url}/hello`);
    assert.equal(hello.status, 200);
    await hello.body?.cancel();
    const stats = await (await fetch(`${proxy.url}/__fault`)).json();
    assert.deepEqual(stats.rules, [{ id: "x", matched: 2, faulted: 1 }]);
    const bad = await fetch(`${proxy.url}/__fault`, { method: "POST", body: `[{"status": 9}]` });
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
    const cleared = await fetch(`${proxy.url}/__fault`, { method: "DELETE" });
    await cleared.body?.cancel();
    assert.deepEqual(proxy.stats().rules, []);
  });
});

for (const forward of FORWARDERS) {
  Deno.test(`[${forward}] streams 64 MiB each way without buffering`, OPTS, async () => {
    const SIZE = 64 * 1024 * 1024;
    const MiB = 1024 * 1024;
    await withProxy([], async (proxy, upstream) => {
      // Warm up so that first-use allocations do not count.
      await nodeRequest(`${proxy.url}/big?size=1000000`, "GET", {}, false);
      const before = Deno.memoryUsage().rss;
      let peak = before;
      const timer = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 20);
      try {
        // Upload: the client holds back everything after the first MiB until the upstream has
        // received that MiB, which only a streaming proxy lets happen.
        const put = await nodeRequest(`${proxy.url}/v2/repo/blobs/uploads/u1?digest=x`, "PUT", {
          body: gated(
            pattern(SIZE),
            MiB,
            () => waitFor(() => (upstream.uploads.at(-1)?.bytes ?? 0) >= MiB, 10_000),
          ),
          length: SIZE,
        });
        assert.equal(put.status, 201);
        const up = upstream.uploads.at(-1)!;
        assert.equal(up.bytes, SIZE);
        assert.equal(up.sha256, patternSha(SIZE));
        if (forward === "node") assert.equal(up.contentLength, String(SIZE));

        // Download: the upstream holds back everything after the first MiB until the client has
        // received it.
        let received = 0;
        upstream.gate = () => waitFor(() => received >= MiB, 10_000);
        const res = await fetch(`${proxy.url}/big?size=${SIZE}`);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("content-length"), String(SIZE));
        const hash = createHash("sha256");
        for await (const chunk of res.body!) {
          received += chunk.byteLength;
          hash.update(chunk);
        }
        assert.equal(received, SIZE);
        assert.equal(hash.digest("hex"), patternSha(SIZE));
      } finally {
        clearInterval(timer);
        upstream.gate = undefined;
      }
      // Loose: client, proxy and upstream share this process, and garbage collection lags (a
      // direct transfer without the proxy grows RSS by about 100 MiB here too).
      const grew = (peak - before) / MiB;
      assert.ok(grew < 256, `RSS grew by ${grew.toFixed(0)} MiB while streaming 2 x 64 MiB`);
    }, forward);
  });
}

Deno.test("command line: prints its address and serves the rules given", OPTS, async () => {
  const upstream = new Upstream();
  const rules = JSON.stringify([{ path: "^/hello$", status: 503, count: 1 }]);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT, "--target", upstream.url, "--rules", rules],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const text = await readUntil(child.stdout, "\n");
    const info = JSON.parse(text.split("\n")[0]);
    assert.match(info.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(info.url, `http://127.0.0.1:${info.port}`);
    assert.equal((await fetch(`${info.url}/hello`)).status, 503);
    const ok = await fetch(`${info.url}/hello`);
    assert.equal(await ok.text(), "hello");
    const stats = await (await fetch(`${info.url}/__fault`)).json();
    assert.deepEqual(stats.rules, [{ id: "rule0", matched: 2, faulted: 1 }]);
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await child.stdout.cancel().catch(() => {});
    await upstream.stop();
  }
});

Deno.test("command line: bad rules are one error line, exit 2", OPTS, async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT, "--target", "http://127.0.0.1:1", "--rules", `[{"reset":{}}]`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  const lines = new TextDecoder().decode(out.stderr).trim().split("\n");
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^error: bad --rules/);
});

/** Passes `first` bytes of `stream`, then waits for `open()` before passing the rest. */
function gated(
  stream: ReadableStream<Uint8Array>,
  first: number,
  open: () => Promise<void>,
): ReadableStream<Uint8Array> {
  let passed = 0;
  let opened = false;
  return stream.pipeThrough(
    new TransformStream({
      async transform(chunk, controller) {
        if (!opened && passed >= first) {
          await open();
          opened = true;
        }
        passed += chunk.byteLength;
        controller.enqueue(chunk);
      },
    }),
  );
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 20));
  }
}
