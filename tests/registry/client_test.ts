import assert from "node:assert/strict";
import { describeError } from "../../lib/errors.ts";
import { canonicalJson } from "../../lib/oci/canonical_json.ts";
import type { RawManifest } from "../../lib/oci/content.ts";
import { digestOf } from "../../lib/oci/digest.ts";
import { DOCKER, OCI } from "../../lib/oci/media_types.ts";
import { MANIFEST_LIMIT, nextLink, RegistryClient } from "../../lib/registry/client.ts";
import type { HttpRequest, HttpResponse, HttpTransport } from "../../lib/registry/http_types.ts";
import {
  defaultRegistryOptions,
  type Direction,
  type RegistryOptions,
} from "../../lib/registry/options.ts";
import { Transport } from "../../lib/registry/transport.ts";
import {
  bodyOf,
  makeImage,
  makeTestCertificates,
  ociError,
  withFakeRegistry,
} from "../_fake_registry.ts";
import { captureLog, rejects } from "../_helpers.ts";

/** Sends requests for `alias` (a non-loopback name) to `target` (`127.0.0.1:PORT`). */
class AliasTransport implements HttpTransport {
  inner = new Transport();
  sent: HttpRequest[] = [];
  constructor(readonly alias: string, readonly target: string) {}
  send(request: HttpRequest): Promise<HttpResponse> {
    this.sent.push(request);
    const url = new URL(request.url);
    if (url.host === this.alias) url.host = this.target;
    return this.inner.send({ ...request, url: url.toString() });
  }
  close() {
    this.inner.close();
  }
}

interface Setup {
  client: RegistryClient;
  transport: HttpTransport & { close(): void };
}

function setup(
  registry: string,
  options: Partial<RegistryOptions> = {},
  direction: Direction = "pull",
  transport: HttpTransport & { close(): void } = new Transport(),
): Setup {
  const client = new RegistryClient(registry, {
    transport,
    options: { ...defaultRegistryOptions(), pushRetryInitialDelay: 1, ...options },
    direction,
  });
  return { client, transport };
}

/** A manifest padded with an annotation to exactly `size` bytes. */
function manifestOfSize(size: number): RawManifest {
  const base = makeImage();
  const doc = JSON.parse(new TextDecoder().decode(base.manifest.bytes));
  doc.annotations = { pad: "" };
  const empty = canonicalJson(doc).byteLength;
  doc.annotations.pad = "p".repeat(size - empty);
  const bytes = canonicalJson(doc);
  assert.equal(bytes.byteLength, size);
  return { bytes, mediaType: OCI.manifest, digest: digestOf(bytes) };
}

Deno.test("client: a loopback registry is found over plain HTTP, once", async () => {
  await withFakeRegistry(async (reg) => {
    const img = makeImage();
    reg.seedImage("app", img, "v1");
    const { client, transport } = setup(reg.host);
    try {
      assert.equal(await client.baseUrl(), reg.url);
      await client.getManifest("app", "v1");
      await client.getManifest("app", img.manifest.digest);
      assert.equal(reg.find("GET", /^\/v2\/$/).length, 1, "one ping");
    } finally {
      transport.close();
    }
  });
});

Deno.test("client: plain HTTP is not tried for other hosts without an insecure flag", async () => {
  await withFakeRegistry(async (reg) => {
    const alias = `registry.test:${reg.host.split(":")[1]}`;
    const transport = new AliasTransport(alias, reg.host);
    const { client } = setup(alias, {}, "pull", transport);
    try {
      const err = await rejects(client.baseUrl());
      assert.ok(err.code === "NETWORK" || err.code === "TLS", err.code);
      assert.deepEqual(transport.sent.map((r) => new URL(r.url).protocol), ["https:"]);
      assert.equal(reg.requests.length, 0, "nothing reached the registry over plain HTTP");
    } finally {
      transport.close();
    }
  });
});

Deno.test("client: insecure flags allow the plain-HTTP fallback, by direction", async (t) => {
  await withFakeRegistry(async (reg) => {
    const alias = `registry.test:${reg.host.split(":")[1]}`;
    const cases: [string, Partial<RegistryOptions>, Direction, boolean][] = [
      ["--insecure-registry", { insecureRegistries: [alias] }, "pull", true],
      ["--insecure-registry (push)", { insecureRegistries: [alias] }, "push", true],
      ["--insecure-pull", { insecurePull: true }, "pull", true],
      ["--insecure-pull does not cover pushes", { insecurePull: true }, "push", false],
      ["--insecure", { insecure: true }, "push", true],
      ["--insecure does not cover pulls", { insecure: true }, "pull", false],
      ["another host listed", { insecureRegistries: ["other.test:5000"] }, "pull", false],
    ];
    for (const [name, options, direction, allowed] of cases) {
      await t.step(name, async () => {
        const transport = new AliasTransport(alias, reg.host);
        const { client } = setup(alias, options, direction, transport);
        try {
          if (allowed) assert.equal(await client.baseUrl(), `http://${alias}`);
          else await rejects(client.baseUrl());
        } finally {
          transport.close();
        }
      });
    }
  });
});

Deno.test("client: the HTTP fallback needs a registry answer (200 or 401) to /v2/", async (t) => {
  for (const status of [404, 500, 302]) {
    await t.step(`ping answering ${status} → no fallback`, async () => {
      await withFakeRegistry(async (reg) => {
        reg.intercept(
          { method: "GET", path: /^\/v2\/$/ },
          () => new Response("not a registry", { status, headers: { location: "/elsewhere" } }),
          5,
        );
        const { client, transport } = setup(reg.host);
        try {
          const err = await rejects(client.baseUrl());
          assert.ok(err.code === "NETWORK" || err.code === "TLS", `${err.code}: ${err.message}`);
        } finally {
          transport.close();
        }
      });
    });
  }
  await t.step("ping answering 401 → plain HTTP with authentication", async () => {
    const dir = await Deno.makeTempDir();
    try {
      await withFakeRegistry(async (reg) => {
        await Deno.writeTextFile(
          `${dir}/config.json`,
          JSON.stringify({ auths: { [reg.host]: { auth: btoa("bob:hunter22") } } }),
        );
        reg.seedImage("app", makeImage(), "v1");
        const { client, transport } = setup(reg.host, { dockerConfigDir: dir });
        try {
          assert.equal(await client.baseUrl(), reg.url);
          await client.getManifest("app", "v1");
          const get = reg.find("GET", "/manifests/v1");
          assert.equal(get.at(-1)?.headers["authorization"], `Basic ${btoa("bob:hunter22")}`);
        } finally {
          transport.close();
        }
      }, { auth: { kind: "basic", username: "bob", password: "hunter22" } });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("client: HTTPS registries with a private CA", async (t) => {
  const certs = await makeTestCertificates();
  try {
    await withFakeRegistry(async (reg) => {
      reg.seedImage("app", makeImage(), "v1");
      await t.step("--registry-certificate: HTTPS is used", async () => {
        const { client, transport } = setup(reg.host, {
          registryCertificates: { [reg.host]: certs.caFile },
        });
        try {
          assert.equal(await client.baseUrl(), `https://${reg.host}`);
          await client.getManifest("app", "v1");
        } finally {
          transport.close();
        }
      });
      await t.step("--skip-tls-verify-registry: HTTPS is used", async () => {
        const { client, transport } = setup(reg.host, { skipTlsVerifyRegistries: [reg.host] });
        try {
          assert.equal(await client.baseUrl(), `https://${reg.host}`);
          await client.getManifest("app", "v1");
        } finally {
          transport.close();
        }
      });
      await t.step("untrusted: a TLS error with a hint, not a plain-HTTP downgrade", async () => {
        const { client, transport } = setup(reg.host);
        try {
          const before = reg.requests.length;
          const err = await rejects(client.baseUrl());
          assert.equal(err.code, "TLS");
          assert.match(describeError(err), /--registry-certificate/);
          assert.equal(reg.requests.length, before, "no request was answered");
        } finally {
          transport.close();
        }
      });
    }, { tls: { cert: certs.cert, key: certs.key } });
  } finally {
    await Deno.remove(certs.dir, { recursive: true });
  }
});

Deno.test("client: GET manifest sends an Accept with OCI and Docker types and returns exact bytes", async () => {
  await withFakeRegistry(async (reg) => {
    const img = makeImage({ docker: true });
    // odd but valid formatting must survive byte for byte
    const bytes = new TextEncoder().encode(
      JSON.stringify(JSON.parse(new TextDecoder().decode(img.manifest.bytes)), null, 3) + "\n",
    );
    reg.seedImage("app", img);
    reg.putManifest("app", { bytes, mediaType: DOCKER.manifest, digest: digestOf(bytes) }, "v1");
    const { client, transport } = setup(reg.host);
    try {
      const got = await client.getManifest("app", "v1");
      assert.deepEqual(got.bytes, bytes);
      assert.equal(got.digest, digestOf(bytes));
      assert.equal(got.mediaType, DOCKER.manifest);
      const accept = reg.find("GET", "/manifests/v1")[0].headers["accept"];
      for (const type of [OCI.manifest, OCI.index, DOCKER.manifest, DOCKER.manifestList]) {
        assert.ok(accept.includes(type), `${type} in ${accept}`);
      }
    } finally {
      transport.close();
    }
  });
});

Deno.test("client: Docker-Content-Digest is verified on tag GETs", async () => {
  await withFakeRegistry(async (reg) => {
    const img = makeImage();
    reg.seedImage("app", img, "v1");
    const other = makeImage({ layers: ["other"] });
    reg.intercept(
      { method: "GET", path: "/manifests/v1" },
      () =>
        new Response(bodyOf(img.manifest.bytes), {
          headers: { "content-type": OCI.manifest, "docker-content-digest": other.manifest.digest },
        }),
    );
    const { client, transport } = setup(reg.host);
    try {
      const err = await rejects(client.getManifest("app", "v1"));
      assert.equal(err.code, "DIGEST_INVALID");
      assert.match(err.message, /content digest is sha256:[0-9a-f]{64}, expected sha256:/);
      // without the header the digest is computed
      reg.intercept(
        { method: "GET", path: "/manifests/v1" },
        () =>
          new Response(bodyOf(img.manifest.bytes), { headers: { "content-type": OCI.manifest } }),
      );
      assert.equal((await client.getManifest("app", "v1")).digest, img.manifest.digest);
    } finally {
      transport.close();
    }
  });
});

Deno.test("client: by-digest GETs are verified against the requested digest", async () => {
  await withFakeRegistry(async (reg) => {
    const img = makeImage();
    const other = makeImage({ layers: ["other"] });
    reg.seedImage("app", img);
    // the registry serves other bytes, with a header that matches those bytes
    reg.intercept(
      { method: "GET", path: `/manifests/${img.manifest.digest}` },
      () =>
        new Response(bodyOf(other.manifest.bytes), {
          headers: { "content-type": OCI.manifest, "docker-content-digest": other.manifest.digest },
        }),
    );
    const { client, transport } = setup(reg.host);
    try {
      const err = await rejects(client.getManifest("app", img.manifest.digest));
      assert.equal(err.code, "DIGEST_INVALID");
      const ok = await client.getManifest("app", img.manifest.digest);
      assert.equal(ok.digest, img.manifest.digest);
    } finally {
      transport.close();
    }
  });
});

Deno.test("client: manifests over 4 MiB are refused on GET, and exactly 4 MiB works", async () => {
  await withFakeRegistry(async (reg) => {
    const exact = manifestOfSize(MANIFEST_LIMIT);
    const img = makeImage();
    reg.seedImage("app", img);
    reg.putManifest("app", exact, "exact");
    const { client, transport } = setup(reg.host);
    try {
      assert.equal((await client.getManifest("app", "exact")).bytes.byteLength, MANIFEST_LIMIT);
      const big = manifestOfSize(MANIFEST_LIMIT + 1);
      reg.putManifest("app", big, "big");
      const err = await rejects(client.getManifest("app", "big"));
      assert.match(err.message, /larger than the 4 MiB limit/);
      // no Content-Length: the stream is cut at the limit
      reg.intercept(
        { method: "GET", path: "/manifests/chunked" },
        () =>
          new Response(
            ReadableStream.from([big.bytes.slice(0, 1 << 20), big.bytes.slice(1 << 20)]),
            {
              headers: { "content-type": OCI.manifest },
            },
          ),
      );
      const err2 = await rejects(client.getManifest("app", "chunked"));
      assert.equal(err2.code, "SIZE_INVALID");
    } finally {
      transport.close();
    }
  });
});

Deno.test("client: manifests over 4 MiB are refused on PUT without sending them", async () => {
  await withFakeRegistry(async (reg) => {
    const img = makeImage();
    reg.seedImage("app", img);
    const { client, transport } = setup(reg.host, {}, "push");
    try {
      await rejects(client.putManifest("app", "big", manifestOfSize(MANIFEST_LIMIT + 1)));
      assert.equal(reg.find("PUT").length, 0);
      const exact = manifestOfSize(MANIFEST_LIMIT);
      await client.putManifest("app", "exact", exact);
      assert.deepEqual(reg.getManifest("app", "exact")?.bytes, exact.bytes);
      const put = reg.find("PUT", "/manifests/exact")[0];
      assert.equal(put.headers["content-type"], OCI.manifest);
      assert.equal(put.headers["content-length"], String(MANIFEST_LIMIT));
    } finally {
      transport.close();
    }
  });
});

Deno.test("client: putManifest checks the digest the registry reports", async () => {
  await withFakeRegistry(async (reg) => {
    const img = makeImage();
    reg.seedImage("app", img);
    reg.intercept({ method: "PUT", path: "/manifests/v1" }, () =>
      new Response(null, {
        status: 201,
        headers: { "docker-content-digest": `sha256:${"0".repeat(64)}` },
      }));
    const { client, transport } = setup(reg.host, {}, "push");
    try {
      const err = await rejects(client.putManifest("app", "v1", img.manifest));
      assert.match(err.message, /the registry stored digest sha256:0{64}, expected sha256:/);
      await client.putManifest("app", "v1", img.manifest);
      assert.deepEqual(reg.getManifest("app", "v1")?.bytes, img.manifest.bytes);
    } finally {
      transport.close();
    }
  });
});

Deno.test("client: headManifest gives a descriptor, or undefined when absent", async () => {
  await withFakeRegistry(async (reg) => {
    const img = makeImage();
    reg.seedImage("app", img, "v1");
    const { client, transport } = setup(reg.host);
    try {
      assert.deepEqual(await client.headManifest("app", "v1"), {
        mediaType: OCI.manifest,
        digest: img.manifest.digest,
        size: img.manifest.bytes.byteLength,
      });
      assert.equal(await client.headManifest("app", "nope"), undefined);
      assert.equal(await client.headManifest("app", `sha256:${"1".repeat(64)}`), undefined);
    } finally {
      transport.close();
    }
  });
});

Deno.test("client: a missing manifest is one line with the code and a hint", async () => {
  await withFakeRegistry(async (reg) => {
    reg.seedImage("app", makeImage(), "v1");
    const { client, transport } = setup(reg.host);
    try {
      const err = await rejects(client.getManifest("app", "v2"));
      assert.equal(err.code, "MANIFEST_UNKNOWN");
      assert.equal(
        describeError(err),
        `fetching manifest ${reg.host}/app:v2 failed: MANIFEST_UNKNOWN: manifest v2 unknown ` +
          `(HTTP 404); check the tag or digest`,
      );
    } finally {
      transport.close();
    }
  });
});

Deno.test("client: a Warning header is shown once per registry and text", async () => {
  await withFakeRegistry(async (reg) => {
    reg.seedImage("app", makeImage(), "v1");
    const log = captureLog();
    const { client, transport } = setup(reg.host);
    try {
      for (let i = 0; i < 4; i++) await client.getManifest("app", "v1");
      await client.headManifest("app", "v1");
      const warnings = log.lines.filter((l) => l.startsWith("WARN"));
      assert.equal(warnings.length, 1, log.lines.join("\n"));
      assert.match(warnings[0], new RegExp(`${reg.host}: this registry is "deprecated"`));
    } finally {
      log.restore();
      transport.close();
    }
  }, { warning: '299 - "this registry is \\"deprecated\\""' });
});

Deno.test("client: tags are listed following Link pagination", async () => {
  await withFakeRegistry(async (reg) => {
    const img = makeImage();
    reg.seedImage("app", img);
    const names = Array.from({ length: 25 }, (_, i) => `t${String(i).padStart(2, "0")}`);
    for (const tag of names) reg.putManifest("app", img.manifest, tag);
    const { client, transport } = setup(reg.host);
    try {
      assert.deepEqual(await client.listTags("app", 10), names);
      const pages = reg.find("GET", "/tags/list");
      assert.equal(pages.length, 3);
      assert.equal(pages[0].query.get("n"), "10");
      assert.equal(pages[1].query.get("last"), "t09");
      assert.equal(pages[2].query.get("last"), "t19");
    } finally {
      transport.close();
    }
  });
});

Deno.test("client: tags are listed with `last` when the registry sends no Link", async () => {
  await withFakeRegistry(async (reg) => {
    const img = makeImage();
    reg.seedImage("app", img);
    const names = Array.from({ length: 20 }, (_, i) => `v${String(i).padStart(2, "0")}`);
    for (const tag of names) reg.putManifest("app", img.manifest, tag);
    const { client, transport } = setup(reg.host);
    try {
      assert.deepEqual(await client.listTags("app", 10), names);
      const pages = reg.find("GET", "/tags/list");
      assert.deepEqual(pages.map((p) => p.query.get("last")), [null, "v09", "v19"]);
      assert.deepEqual(await client.listTags("app", 7), names);
    } finally {
      transport.close();
    }
  }, { linkHeader: false });
});

Deno.test("client: a tag list that is not JSON is one clear error", async () => {
  await withFakeRegistry(async (reg) => {
    reg.seedImage("app", makeImage(), "v1");
    reg.intercept({ path: "/tags/list" }, () => new Response("<html>login</html>"));
    const { client, transport } = setup(reg.host);
    try {
      const err = await rejects(client.listTags("app"));
      assert.equal(err.message, `listing tags of ${reg.host}/app failed: the answer is not JSON`);
    } finally {
      transport.close();
    }
  });
});

Deno.test("client: nextLink resolves relative and absolute Link values", () => {
  const base = "https://reg.example";
  assert.equal(
    nextLink('</v2/a/tags/list?n=2&last=b>; rel="next"', base),
    "https://reg.example/v2/a/tags/list?n=2&last=b",
  );
  assert.equal(
    nextLink("<https://cdn.example/v2/a/tags/list?last=b>; rel=next", base),
    "https://cdn.example/v2/a/tags/list?last=b",
  );
  assert.equal(nextLink('</x>; rel="prev"', base), undefined);
  assert.equal(nextLink(null, base), undefined);
});

Deno.test("client: 5xx and 429 are retried (Retry-After honoured); 4xx are not", async () => {
  await withFakeRegistry(async (reg) => {
    const img = makeImage();
    reg.seedImage("app", img, "v1");
    reg.intercept({ path: "/manifests/v1" }, () => ociError(503, "UNAVAILABLE", "busy"));
    reg.intercept(
      { path: "/manifests/v1" },
      () => ociError(429, "TOOMANYREQUESTS", "slow down", { "retry-after": "1" }),
    );
    const log = captureLog();
    const { client, transport } = setup(reg.host, {
      imageDownloadRetry: 3,
      pushRetryInitialDelay: 1,
      pushRetryMaxDelay: 10,
    });
    try {
      const started = performance.now();
      const got = await client.getManifest("app", "v1");
      assert.equal(got.digest, img.manifest.digest);
      assert.equal(reg.find("GET", "/manifests/v1").length, 3);
      assert.ok(performance.now() - started >= 950, "waited for Retry-After");
      assert.equal(log.lines.filter((l) => l.includes("retrying")).length, 2);
      reg.clearLog();
      await rejects(client.getManifest("app", "missing"));
      assert.equal(reg.find("GET", "/manifests/missing").length, 1, "404 is not retried");
    } finally {
      log.restore();
      transport.close();
    }
  });
});

Deno.test("client: without retries a 5xx fails at once with one line", async () => {
  await withFakeRegistry(async (reg) => {
    reg.seedImage("app", makeImage(), "v1");
    reg.intercept(
      { path: "/manifests/v1" },
      () => new Response("<html>oops</html>", { status: 502 }),
    );
    const { client, transport } = setup(reg.host);
    try {
      const err = await rejects(client.getManifest("app", "v1"));
      assert.equal(err.message, `fetching manifest ${reg.host}/app:v1 failed: HTTP 502`);
    } finally {
      transport.close();
    }
  });
});

Deno.test("client: Bearer tokens are fetched per scope and refreshed after a 401", async () => {
  await withFakeRegistry(async (reg) => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(
        `${dir}/config.json`,
        JSON.stringify({ auths: { [reg.host]: { username: "ann", password: "s3cret-pw" } } }),
      );
      const img = makeImage();
      reg.seedImage("team/app", img, "v1");
      const { client, transport } = setup(reg.host, { dockerConfigDir: dir }, "push");
      try {
        await client.getManifest("team/app", "v1");
        const tokenRequests = () => reg.find("GET", "/token");
        assert.equal(tokenRequests().length, 1);
        assert.deepEqual(tokenRequests()[0].query.getAll("scope"), ["repository:team/app:pull"]);
        await client.putManifest("team/app", "v2", img.manifest);
        assert.deepEqual(tokenRequests()[1].query.getAll("scope"), [
          "repository:team/app:pull,push",
        ]);
        reg.revokeTokens();
        await client.putManifest("team/app", "v3", img.manifest);
        assert.equal(reg.getManifest("team/app", "v3")?.mediaType, OCI.manifest);
        assert.equal(tokenRequests().length, 3);
      } finally {
        transport.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }, { auth: { kind: "bearer", username: "ann", password: "s3cret-pw" } });
});

Deno.test("client: refused credentials end in one line without the secret", async () => {
  await withFakeRegistry(async (reg) => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(
        `${dir}/config.json`,
        JSON.stringify({ auths: { [reg.host]: { auth: btoa("ann:wrong-password-123") } } }),
      );
      reg.seedImage("app", makeImage(), "v1");
      const { client, transport } = setup(reg.host, { dockerConfigDir: dir });
      try {
        const err = await rejects(client.getManifest("app", "v1"));
        const line = describeError(err);
        assert.equal(err.code, "UNAUTHORIZED");
        assert.ok(!line.includes("wrong-password-123"));
        assert.ok(!line.includes(btoa("ann:wrong-password-123")));
        assert.ok(!line.includes("\n"));
      } finally {
        transport.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }, { auth: { kind: "bearer", username: "ann", password: "right-password" } });
});
