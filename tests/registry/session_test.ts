import assert from "node:assert/strict";
import { KanikoError } from "../../lib/errors.ts";
import { defaultRegistryOptions, type RegistryOptions } from "../../lib/registry/options.ts";
import { parseReference } from "../../lib/registry/reference.ts";
import { RegistrySession } from "../../lib/registry/session.ts";
import { FakeRegistry, makeImage } from "../_fake_registry.ts";
import { captureLog } from "../_helpers.ts";

async function withSession(
  options: (mirror: FakeRegistry, origin: FakeRegistry) => Partial<RegistryOptions>,
  fn: (session: RegistrySession, mirror: FakeRegistry, origin: FakeRegistry) => Promise<void>,
): Promise<void> {
  const mirror = await FakeRegistry.start();
  const origin = await FakeRegistry.start();
  const session = new RegistrySession({
    ...defaultRegistryOptions(),
    ...options(mirror, origin),
  });
  try {
    await fn(session, mirror, origin);
  } finally {
    session.close();
    await mirror.close();
    await origin.close();
  }
}

Deno.test("session: one client per registry and direction", async () => {
  await withSession(() => ({}), (session, mirror) => {
    const pull = session.client(mirror.host, "pull");
    assert.equal(session.client(mirror.host, "pull"), pull);
    assert.notEqual(session.client(mirror.host, "push"), pull);
    assert.equal(session.client(mirror.host, "push").direction, "push");
    return Promise.resolve();
  });
});

Deno.test("session: repository() pins the digest, else the tag, else latest", async () => {
  await withSession(() => ({}), (session, mirror) => {
    const digest = `sha256:${"a".repeat(64)}`;
    assert.equal(
      session.repository(parseReference(`${mirror.host}/app:v1`), "pull").defaultRef,
      "v1",
    );
    assert.equal(
      session.repository(parseReference(`${mirror.host}/app:v1@${digest}`), "pull").defaultRef,
      digest,
    );
    assert.equal(
      session.repository(parseReference(`${mirror.host}/app`, { defaultTag: false }), "pull")
        .defaultRef,
      "latest",
    );
    return Promise.resolve();
  });
});

Deno.test("session: --registry-map entries are tried first", async () => {
  await withSession(
    (m, o) => ({ registryMap: { [o.host]: [m.host] } }),
    async (session, mirror, origin) => {
      const img = makeImage();
      mirror.seedImage("app", img, "v1");
      origin.seedImage("app", makeImage({ layers: ["origin"] }), "v1");
      const pulled = await session.resolvePull(parseReference(`${origin.host}/app:v1`));
      assert.equal(pulled.reference.registry, mirror.host);
      assert.equal(pulled.manifest.digest, img.manifest.digest);
      assert.equal(origin.find("GET", "/manifests/").length, 0);
    },
  );
});

Deno.test("session: falls back to the original registry, logging the miss", async () => {
  const { lines, restore } = captureLog();
  try {
    await withSession(
      (m, o) => ({ registryMap: { [o.host]: [`${m.host}/cache`] } }),
      async (session, mirror, origin) => {
        const img = makeImage();
        origin.seedImage("app", img, "v1");
        const pulled = await session.resolvePull(parseReference(`${origin.host}/app:v1`));
        assert.equal(pulled.reference.registry, origin.host);
        assert.equal(pulled.manifest.digest, img.manifest.digest);
        assert.deepEqual(mirror.find("GET", "/manifests/").map((r) => r.path), [
          "/v2/cache/app/manifests/v1",
        ]);
        assert.equal(
          lines.filter((l) => l.includes(`could not pull ${mirror.host}/cache/app:v1`)).length,
          1,
        );
      },
    );
  } finally {
    restore();
  }
});

Deno.test("session: --skip-default-registry-fallback fails with the mirror's error", async () => {
  await withSession(
    (m, o) => ({ registryMap: { [o.host]: [m.host] }, skipDefaultRegistryFallback: true }),
    async (session, mirror, origin) => {
      origin.seedImage("app", makeImage(), "v1");
      mirror.seedImage("app", makeImage(), "other");
      const err = await session.resolvePull(parseReference(`${origin.host}/app:v1`)).catch((e) =>
        e
      );
      assert.ok(err instanceof KanikoError);
      assert.equal(err.code, "MANIFEST_UNKNOWN");
      assert.ok(err.message.includes(mirror.host));
      assert.equal(origin.requests.length, 0);
    },
  );
});

Deno.test("session: --registry-mirror serves Docker Hub references", async () => {
  await withSession(
    (m) => ({ registryMirrors: [m.host], skipDefaultRegistryFallback: true }),
    async (session, mirror) => {
      const img = makeImage();
      mirror.seedImage("library/busybox", img, "1.36");
      const pulled = await session.resolvePull(parseReference("busybox:1.36"));
      assert.equal(pulled.reference.toString(), `${mirror.host}/library/busybox:1.36`);
      assert.equal(pulled.manifest.digest, img.manifest.digest);
      assert.equal(pulled.repository.name, `${mirror.host}/library/busybox`);
    },
  );
});
