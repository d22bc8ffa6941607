import assert from "node:assert/strict";
import { describeError } from "../../lib/errors.ts";
import type { HostSettings } from "../../lib/registry/options.ts";
import {
  DEFAULT_BODY_LIMIT,
  networkError,
  readLimited,
  redactUrl,
  Transport,
} from "../../lib/registry/transport.ts";
import { bodyOf, freePort, makeTestCertificates, randomBytes } from "../_fake_registry.ts";
import { rejects } from "../_helpers.ts";

const PLAIN: HostSettings = { allowHttp: true, skipVerify: false };

interface Seen {
  method: string;
  path: string;
  headers: Headers;
  body: Uint8Array;
}

/** A small server recording what it receives; `handler` may answer differently. */
async function withServer(
  handler: (req: Request, seen: Seen) => Response | Promise<Response>,
  fn: (base: string, seen: Seen[]) => Promise<void>,
  tls?: { cert: string; key: string },
): Promise<void> {
  const seen: Seen[] = [];
  const options = { port: 0, hostname: "127.0.0.1", onListen: () => {} };
  const serve = async (req: Request) => {
    const s: Seen = {
      method: req.method,
      path: new URL(req.url).pathname + new URL(req.url).search,
      headers: req.headers,
      body: new Uint8Array(await req.arrayBuffer()),
    };
    seen.push(s);
    return await handler(req, s);
  };
  const server = tls ? Deno.serve({ ...options, ...tls }, serve) : Deno.serve(options, serve);
  try {
    await fn(`${tls ? "https" : "http"}://127.0.0.1:${server.addr.port}`, seen);
  } finally {
    await server.shutdown();
  }
}

/** Counts calls of the global fetch while `fn` runs. */
async function countingFetch<T>(fn: () => Promise<T>): Promise<{ result: T; calls: number }> {
  const original = globalThis.fetch;
  let calls = 0;
  globalThis.fetch = ((...args: Parameters<typeof fetch>) => {
    calls++;
    return original(...args);
  }) as typeof fetch;
  try {
    return { result: await fn(), calls };
  } finally {
    globalThis.fetch = original;
  }
}

function streamOf(bytes: Uint8Array, chunk = 8192, delayMs = 0): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    async pull(controller) {
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      if (off >= bytes.byteLength) return controller.close();
      controller.enqueue(bytes.slice(off, off + chunk));
      off += chunk;
    },
  });
}

Deno.test("transport: plain requests go through fetch, with a user agent", async () => {
  await withServer(() => new Response("hello"), async (base, seen) => {
    const t = new Transport({ userAgent: "kaniko-test/1" });
    try {
      const { result: res, calls } = await countingFetch(() =>
        t.send({ method: "GET", url: `${base}/v2/`, host: PLAIN })
      );
      assert.equal(calls, 1);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), "hello");
      assert.equal(seen[0].headers.get("user-agent"), "kaniko-test/1");
    } finally {
      t.close();
    }
  });
});

Deno.test("transport: byte bodies go through fetch with a Content-Length", async () => {
  await withServer(() => new Response(null, { status: 201 }), async (base, seen) => {
    const t = new Transport();
    try {
      const body = randomBytes(5000);
      const { result: res, calls } = await countingFetch(() =>
        t.send({ method: "PUT", url: `${base}/m`, body, host: PLAIN })
      );
      await res.discard();
      assert.equal(calls, 1);
      assert.equal(seen[0].headers.get("content-length"), "5000");
      assert.deepEqual(seen[0].body, body);
    } finally {
      t.close();
    }
  });
});

Deno.test("transport: a SizedStream goes through node:http with a real Content-Length", async () => {
  await withServer(() => new Response(null, { status: 201 }), async (base, seen) => {
    const t = new Transport();
    try {
      const bytes = randomBytes(300_000, 7);
      const { result: res, calls } = await countingFetch(() =>
        t.send({
          method: "PUT",
          url: `${base}/upload?digest=x`,
          headers: { "Content-Type": "application/octet-stream" },
          body: { stream: streamOf(bytes, 10_000), length: bytes.byteLength },
          host: PLAIN,
        })
      );
      await res.discard();
      assert.equal(calls, 0, "a streamed body must not go through fetch");
      assert.equal(res.status, 201);
      const s = seen[0];
      assert.equal(s.path, "/upload?digest=x");
      assert.equal(s.headers.get("content-length"), "300000");
      assert.equal(s.headers.get("transfer-encoding"), null);
      assert.equal(s.headers.get("content-type"), "application/octet-stream");
      assert.deepEqual(s.body, bytes);
    } finally {
      t.close();
    }
  });
});

Deno.test("transport: a source stream that fails aborts the request with an error", async () => {
  await withServer(() => new Response(null, { status: 201 }), async (base) => {
    const t = new Transport();
    try {
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(c) {
          if (sent++ === 2) return c.error(new Error("disk gone"));
          c.enqueue(new Uint8Array(1000));
        },
      });
      await assert.rejects(
        t.send({ method: "PUT", url: `${base}/u`, body: { stream, length: 10_000 }, host: PLAIN }),
      );
    } finally {
      t.close();
    }
  });
});

Deno.test("transport: follows redirects, relative and absolute, keeping Authorization on the same host", async () => {
  await withServer((req) => {
    const path = new URL(req.url).pathname;
    if (path === "/a") return new Response(null, { status: 302, headers: { location: "/b" } });
    if (path === "/b") {
      return new Response(null, {
        status: 307,
        headers: { location: `${new URL(req.url).origin}/c` },
      });
    }
    return new Response("end");
  }, async (base, seen) => {
    const t = new Transport();
    try {
      const res = await t.send({
        method: "GET",
        url: `${base}/a`,
        headers: { Authorization: "Bearer same-host-token" },
        host: PLAIN,
      });
      assert.equal(await res.text(), "end");
      assert.equal(res.url, `${base}/c`);
      assert.deepEqual(seen.map((s) => s.path), ["/a", "/b", "/c"]);
      for (const s of seen) assert.equal(s.headers.get("authorization"), "Bearer same-host-token");
    } finally {
      t.close();
    }
  });
});

Deno.test("transport: Authorization is not forwarded to another host", async () => {
  await withServer(() => new Response("blob bytes"), async (cdn, cdnSeen) => {
    await withServer(
      () => new Response(null, { status: 307, headers: { location: `${cdn}/cdn/blob?sig=abc` } }),
      async (base, seen) => {
        const t = new Transport();
        try {
          const res = await t.send({
            method: "GET",
            url: `${base}/v2/r/blobs/sha256:x`,
            headers: { authorization: "Bearer secret-token", range: "bytes=5-" },
            host: PLAIN,
          });
          assert.equal(await res.text(), "blob bytes");
          assert.equal(seen[0].headers.get("authorization"), "Bearer secret-token");
          assert.equal(cdnSeen.length, 1);
          assert.equal(cdnSeen[0].headers.get("authorization"), null);
          assert.equal(cdnSeen[0].headers.get("range"), "bytes=5-", "other headers are kept");
          assert.equal(cdnSeen[0].path, "/cdn/blob?sig=abc");
        } finally {
          t.close();
        }
      },
    );
  });
});

Deno.test("transport: Authorization is not forwarded across hosts on the node:http path either", async () => {
  const certs = await makeTestCertificates();
  try {
    await withServer(() => new Response("cdn"), async (cdn, cdnSeen) => {
      await withServer(
        () => new Response(null, { status: 302, headers: { location: `${cdn}/x` } }),
        async (base) => {
          const t = new Transport();
          try {
            const { result: res, calls } = await countingFetch(() =>
              t.send({
                method: "GET",
                url: `${base}/v2/`,
                headers: { authorization: "Basic dXNlcjpwYXNz" },
                host: { allowHttp: false, skipVerify: true },
              })
            );
            assert.equal(calls, 0);
            assert.equal(await res.text(), "cdn");
            assert.equal(cdnSeen[0].headers.get("authorization"), null);
          } finally {
            t.close();
          }
        },
        { cert: certs.cert, key: certs.key },
      );
    }, { cert: certs.cert, key: certs.key });
  } finally {
    await Deno.remove(certs.dir, { recursive: true });
  }
});

Deno.test("transport: 303 after a POST with a body continues with a GET without the body", async () => {
  await withServer((req) => {
    if (new URL(req.url).pathname === "/post") {
      return new Response(null, { status: 303, headers: { location: "/result" } });
    }
    return new Response(`got ${req.method}`);
  }, async (base, seen) => {
    const t = new Transport();
    try {
      const res = await t.send({
        method: "POST",
        url: `${base}/post`,
        body: "payload",
        host: PLAIN,
      });
      assert.equal(await res.text(), "got GET");
      assert.equal(seen[1].body.byteLength, 0);
    } finally {
      t.close();
    }
  });
});

Deno.test("transport: a streamed body is not replayed on a 307 (the redirect is returned)", async () => {
  await withServer(
    () => new Response(null, { status: 307, headers: { location: "/elsewhere" } }),
    async (base, seen) => {
      const t = new Transport();
      try {
        const bytes = randomBytes(1000);
        const res = await t.send({
          method: "PUT",
          url: `${base}/u`,
          body: { stream: streamOf(bytes), length: bytes.byteLength },
          host: PLAIN,
        });
        await res.discard();
        assert.equal(res.status, 307);
        assert.equal(seen.length, 1);
      } finally {
        t.close();
      }
    },
  );
});

Deno.test("transport: stops after 5 redirects and returns the last redirect", async () => {
  await withServer((req) => {
    const n = Number(new URL(req.url).pathname.slice(1));
    return new Response(null, { status: 302, headers: { location: `/${n + 1}` } });
  }, async (base, seen) => {
    const t = new Transport();
    try {
      const res = await t.send({ method: "GET", url: `${base}/0`, host: PLAIN });
      await res.discard();
      assert.equal(res.status, 302);
      assert.equal(seen.length, 6);
    } finally {
      t.close();
    }
  });
});

Deno.test("transport: connection refused is a one-line NETWORK error on both paths", async () => {
  const port = freePort();
  const t = new Transport();
  try {
    const viaFetch = await rejects(
      t.send({ method: "GET", url: `http://127.0.0.1:${port}/v2/`, host: PLAIN }),
    );
    assert.equal(viaFetch.code, "NETWORK");
    assert.equal(viaFetch.message, `cannot reach 127.0.0.1:${port}: connection refused`);
    const viaNode = await rejects(t.send({
      method: "PUT",
      url: `http://127.0.0.1:${port}/u`,
      body: { stream: streamOf(new Uint8Array(10)), length: 10 },
      host: PLAIN,
    }));
    assert.equal(viaNode.code, "NETWORK");
    assert.equal(viaNode.message, `cannot reach 127.0.0.1:${port}: connection refused`);
  } finally {
    t.close();
  }
});

Deno.test("transport: an unknown host name is a NETWORK error", async () => {
  const t = new Transport();
  try {
    const err = await rejects(
      t.send({ method: "GET", url: "http://no-such-host.invalid/v2/", host: PLAIN }),
    );
    assert.equal(err.code, "NETWORK");
    assert.match(err.message, /^cannot reach no-such-host\.invalid: /);
    assert.ok(!describeError(err).includes("\n"));
  } finally {
    t.close();
  }
});

Deno.test("transport: plain HTTP to a TLS port and TLS to a plain port give short messages", async () => {
  const certs = await makeTestCertificates();
  try {
    await withServer(() => new Response("tls"), async (base) => {
      const t = new Transport();
      try {
        const err = await rejects(
          t.send({ method: "GET", url: base.replace("https:", "http:") + "/v2/", host: PLAIN }),
        );
        assert.equal(err.code, "NETWORK");
        const host = new URL(base).host;
        assert.ok(err.message.startsWith(`cannot reach ${host}: `), err.message);
        assert.doesNotMatch(err.message, /fetch failed|error sending request|client error/);
      } finally {
        t.close();
      }
    }, { cert: certs.cert, key: certs.key });
    await withServer(() => new Response("plain"), async (base) => {
      const t = new Transport();
      try {
        const err = await rejects(
          t.send({ method: "GET", url: base.replace("http:", "https:") + "/v2/", host: PLAIN }),
        );
        assert.ok(err.code === "NETWORK" || err.code === "TLS", err.code);
        assert.doesNotMatch(err.message, /fetch failed|error sending request|client error/);
      } finally {
        t.close();
      }
    });
  } finally {
    await Deno.remove(certs.dir, { recursive: true });
  }
});

Deno.test("transport: TLS against a private CA", async (t) => {
  const certs = await makeTestCertificates();
  try {
    await withServer(
      () => new Response("secure"),
      async (base) => {
        const host = new URL(base).host;
        await t.step("untrusted certificate → one-line TLS error with a hint", async () => {
          const tr = new Transport();
          try {
            const err = await rejects(
              tr.send({
                method: "GET",
                url: `${base}/v2/`,
                host: { allowHttp: false, skipVerify: false },
              }),
            );
            assert.equal(err.code, "TLS");
            assert.ok(err.message.startsWith(`TLS connection to ${host} failed: `), err.message);
            assert.ok(err.hint?.includes(`--registry-certificate ${host}=`), err.hint);
            const line = describeError(err);
            assert.ok(!line.includes("\n"));
            assert.match(line, /--registry-certificate/);
            assert.doesNotMatch(line, /fetch failed|error sending request|client error/);
          } finally {
            tr.close();
          }
        });
        await t.step("untrusted certificate on the node:http path → TLS error too", async () => {
          const tr = new Transport();
          try {
            const err = await rejects(tr.send({
              method: "PUT",
              url: `${base}/u`,
              body: { stream: streamOf(new Uint8Array(10)), length: 10 },
              host: { allowHttp: false, skipVerify: false },
            }));
            assert.equal(err.code, "TLS", err.message);
            assert.ok(err.hint?.includes("--registry-certificate"));
          } finally {
            tr.close();
          }
        });
        await t.step("skip-verify goes through node:https and works", async () => {
          const tr = new Transport();
          try {
            const { result: res, calls } = await countingFetch(() =>
              tr.send({
                method: "GET",
                url: `${base}/v2/`,
                host: { allowHttp: false, skipVerify: true },
              })
            );
            assert.equal(calls, 0);
            assert.equal(await res.text(), "secure");
          } finally {
            tr.close();
          }
        });
        await t.step("--registry-certificate: fetch trusts the CA file", async () => {
          const tr = new Transport();
          try {
            const settings = { allowHttp: false, skipVerify: false, caFile: certs.caFile };
            const { result: res, calls } = await countingFetch(() =>
              tr.send({ method: "GET", url: `${base}/v2/`, host: settings })
            );
            assert.equal(calls, 1);
            assert.equal(await res.text(), "secure");
            // a streamed body with the same CA goes through node:https
            const up = await tr.send({
              method: "PUT",
              url: `${base}/u`,
              body: { stream: streamOf(randomBytes(20_000)), length: 20_000 },
              host: settings,
            });
            assert.equal(up.status, 200);
            await up.discard();
          } finally {
            tr.close();
          }
        });
        await t.step("a missing CA file is a clear error", async () => {
          const tr = new Transport();
          try {
            const err = await rejects(tr.send({
              method: "GET",
              url: `${base}/v2/`,
              host: { allowHttp: false, skipVerify: false, caFile: `${certs.dir}/missing.pem` },
            }));
            assert.match(err.message, /cannot read CA certificate .*missing\.pem/);
          } finally {
            tr.close();
          }
        });
      },
      { cert: certs.cert, key: certs.key },
    );
  } finally {
    await Deno.remove(certs.dir, { recursive: true });
  }
});

Deno.test("transport: no response headers within headersTimeout → NETWORK timed out", async () => {
  let release!: () => void;
  const hold = new Promise<void>((r) => release = r);
  await withServer(async () => {
    await hold;
    return new Response("late");
  }, async (base) => {
    const t = new Transport({ headersTimeout: 200 });
    try {
      const err = await rejects(t.send({ method: "GET", url: `${base}/slow`, host: PLAIN }));
      assert.equal(err.code, "NETWORK");
      assert.match(err.message, /timed out/);
      const err2 = await rejects(t.send({
        method: "PUT",
        url: `${base}/slow`,
        body: { stream: streamOf(new Uint8Array(10)), length: 10 },
        host: PLAIN,
      }));
      assert.equal(err2.code, "NETWORK");
      assert.match(err2.message, /timed out/);
    } finally {
      release();
      t.close();
    }
  });
});

Deno.test("transport: headersTimeout does not cut a slow download after the headers arrived", async () => {
  await withServer(() => {
    let n = 0;
    return new Response(
      new ReadableStream({
        async pull(c) {
          await new Promise((r) => setTimeout(r, 100));
          if (n++ === 6) return c.close();
          c.enqueue(new Uint8Array(100));
        },
      }),
    );
  }, async (base) => {
    const t = new Transport({ headersTimeout: 250 });
    try {
      const res = await t.send({ method: "GET", url: `${base}/blob`, host: PLAIN });
      assert.equal((await res.bytes()).byteLength, 600);
    } finally {
      t.close();
    }
  });
});

Deno.test("transport: headersTimeout does not cut a slow upload while the body is being sent", async () => {
  await withServer(() => new Response(null, { status: 201 }), async (base, seen) => {
    const t = new Transport({ headersTimeout: 250 });
    try {
      const bytes = randomBytes(8 * 1000);
      const res = await t.send({
        method: "PUT",
        url: `${base}/u`,
        body: { stream: streamOf(bytes, 1000, 80), length: bytes.byteLength },
        host: PLAIN,
      });
      await res.discard();
      assert.equal(res.status, 201);
      assert.deepEqual(seen[0].body, bytes);
    } finally {
      t.close();
    }
  });
});

Deno.test("transport: an aborted signal cancels the request", async () => {
  let release!: () => void;
  const hold = new Promise<void>((r) => release = r);
  await withServer(async () => {
    await hold;
    return new Response("late");
  }, async (base) => {
    const t = new Transport();
    try {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      await assert.rejects(
        t.send({ method: "GET", url: `${base}/x`, host: PLAIN, signal: controller.signal }),
      );
    } finally {
      release();
      t.close();
    }
  });
});

Deno.test("transport: bytes() and text() refuse bodies over the limit with SIZE_INVALID", async () => {
  await withServer(() => new Response(bodyOf(new Uint8Array(2048))), async (base) => {
    const t = new Transport();
    try {
      const res = await t.send({ method: "GET", url: `${base}/big?token=s3cr3t`, host: PLAIN });
      const err = await rejects(res.bytes(1024));
      assert.equal(err.code, "SIZE_INVALID");
      assert.match(err.message, /larger than 1024 bytes/);
      assert.ok(!err.message.includes("s3cr3t"), "query strings are not shown");
      const ok = await t.send({ method: "GET", url: `${base}/big`, host: PLAIN });
      assert.equal((await ok.bytes(2048)).byteLength, 2048, "the limit itself is allowed");
    } finally {
      t.close();
    }
  });
  assert.equal(DEFAULT_BODY_LIMIT, 4 * 1024 * 1024);
  assert.deepEqual(await readLimited(null, 10, "x"), new Uint8Array(0));
});

Deno.test("transport: redactUrl drops credentials and query strings", () => {
  assert.equal(
    redactUrl("https://user:pw@reg.example/v2/r/blobs/uploads/1?_state=abc&digest=sha256:1"),
    "https://reg.example/v2/r/blobs/uploads/1",
  );
  assert.equal(redactUrl("not a url"), "not a url");
});

Deno.test("transport: networkError classifies causes", () => {
  const url = new URL("https://reg.example:5000/v2/");
  const host: HostSettings = { allowHttp: false, skipVerify: false };
  const tls = networkError(url, new Error("invalid peer certificate: UnknownIssuer"), host);
  assert.equal(tls.code, "TLS");
  assert.match(tls.hint ?? "", /--registry-certificate reg\.example:5000=CA\.pem/);
  const skip = networkError(url, new Error("handshake failure"), { ...host, skipVerify: true });
  assert.equal(skip.code, "TLS");
  assert.equal(skip.hint, undefined, "no CA hint when verification is already off");
  const reset = networkError(
    url,
    Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }),
    host,
  );
  assert.equal(reset.message, "cannot reach reg.example:5000: connection reset");
  const dns = networkError(url, new Error("getaddrinfo ENOTFOUND reg.example"), host);
  assert.equal(dns.message, "cannot reach reg.example:5000: host name not found");
  const nested = networkError(
    url,
    new TypeError("fetch failed", { cause: new Error("Connection refused (os error 111)") }),
    host,
  );
  assert.equal(nested.message, "cannot reach reg.example:5000: connection refused");
  const long = networkError(url, new Error("x".repeat(500)), host);
  assert.ok(long.message.length < 260);
});
