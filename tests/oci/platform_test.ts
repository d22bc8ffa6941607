import assert from "node:assert/strict";
import { KanikoError, UsageError } from "../../lib/errors.ts";
import { digestOf } from "../../lib/oci/digest.ts";
import { OCI } from "../../lib/oci/media_types.ts";
import {
  formatPlatform,
  hostPlatform,
  normalizePlatform,
  parsePlatform,
  platformMatches,
  selectManifest,
} from "../../lib/oci/platform.ts";
import type { Index, Platform } from "../../lib/oci/schemas.ts";

Deno.test("parsePlatform normalises like containerd", () => {
  const cases: Array<[string, Platform]> = [
    ["linux/amd64", { os: "linux", architecture: "amd64" }],
    ["linux/x86_64", { os: "linux", architecture: "amd64" }],
    ["linux/x86-64", { os: "linux", architecture: "amd64" }],
    ["linux/amd64/v1", { os: "linux", architecture: "amd64" }],
    ["linux/amd64/v3", { os: "linux", architecture: "amd64", variant: "v3" }],
    ["linux/aarch64", { os: "linux", architecture: "arm64" }],
    ["linux/arm64/v8", { os: "linux", architecture: "arm64" }],
    ["linux/arm64/8", { os: "linux", architecture: "arm64" }],
    ["linux/arm64/v9", { os: "linux", architecture: "arm64", variant: "v9" }],
    ["linux/i386", { os: "linux", architecture: "386" }],
    ["linux/i686", { os: "linux", architecture: "386" }],
    ["linux/armhf", { os: "linux", architecture: "arm", variant: "v7" }],
    ["linux/armel", { os: "linux", architecture: "arm", variant: "v6" }],
    ["linux/arm", { os: "linux", architecture: "arm", variant: "v7" }],
    ["linux/arm/7", { os: "linux", architecture: "arm", variant: "v7" }],
    ["linux/arm/6", { os: "linux", architecture: "arm", variant: "v6" }],
    ["linux/arm/v5", { os: "linux", architecture: "arm", variant: "v5" }],
    ["Linux/AMD64", { os: "linux", architecture: "amd64" }],
    ["windows/amd64", { os: "windows", architecture: "amd64" }],
    ["linux/s390x", { os: "linux", architecture: "s390x" }],
    ["linux/riscv64", { os: "linux", architecture: "riscv64" }],
  ];
  for (const [text, want] of cases) assert.deepEqual(parsePlatform(text), want, text);
});

Deno.test("parsePlatform rejects malformed values with usage errors", () => {
  const cases: Array<[string, RegExp]> = [
    ["linux", /expected os\/arch/],
    ["linux/amd64/v8/x", /expected os\/arch/],
    ["", /expected os\/arch/],
    ["linux/", /empty or malformed part/],
    ["/amd64", /empty or malformed part/],
    ["linux//v7", /empty or malformed part/],
    ["linux/arm/", /empty or malformed part/],
    ["linux/am d64", /empty or malformed part/],
    ["linuks/amd64", /unknown os "linuks"/],
    ["linux/amd65", /unknown architecture "amd65"/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => parsePlatform(text), (e: unknown) => {
      assert.ok(e instanceof UsageError, text);
      assert.match(e.message, re, text);
      assert.ok(!e.message.includes("\n"));
      return true;
    });
  }
  assert.throws(
    () => parsePlatform("linux/sparc128"),
    (e: unknown) => /amd64, .*arm64/.test((e as KanikoError).hint ?? ""),
  );
});

Deno.test("formatPlatform prints the canonical form", () => {
  assert.equal(formatPlatform({ os: "linux", architecture: "arm", variant: "v7" }), "linux/arm/v7");
  assert.equal(formatPlatform({ os: "linux", architecture: "arm" }), "linux/arm/v7");
  assert.equal(
    formatPlatform({ os: "linux", architecture: "arm64", variant: "v8" }),
    "linux/arm64",
  );
  assert.equal(formatPlatform({ os: "linux", architecture: "amd64" }), "linux/amd64");
  for (const t of ["linux/amd64", "linux/arm/v6", "linux/ppc64le", "linux/amd64/v3"]) {
    assert.equal(formatPlatform(parsePlatform(t)), t);
  }
});

Deno.test("normalizePlatform keeps os.version and features", () => {
  const p = normalizePlatform({
    os: "windows",
    architecture: "x86_64",
    "os.version": "10.0.20348.1",
    "os.features": ["win32k"],
  });
  assert.deepEqual(p, {
    os: "windows",
    architecture: "amd64",
    "os.version": "10.0.20348.1",
    "os.features": ["win32k"],
  });
});

Deno.test("platformMatches: arm64 ≡ arm64/v8, arm ≡ arm/v7, variants otherwise strict", () => {
  const p = (os: string, architecture: string, variant?: string): Platform =>
    variant ? { os, architecture, variant } : { os, architecture };
  assert.ok(platformMatches(p("linux", "arm64"), p("linux", "arm64", "v8")));
  assert.ok(platformMatches(p("linux", "arm64", "v8"), p("linux", "arm64")));
  assert.ok(platformMatches(p("linux", "arm"), p("linux", "arm", "v7")));
  assert.ok(platformMatches(p("linux", "x86_64"), p("linux", "amd64")));
  assert.ok(!platformMatches(p("linux", "arm", "v7"), p("linux", "arm", "v6")));
  assert.ok(!platformMatches(p("linux", "arm64"), p("linux", "arm64", "v9")));
  assert.ok(!platformMatches(p("linux", "amd64"), p("windows", "amd64")));
  assert.ok(!platformMatches(p("linux", "amd64"), p("linux", "arm64")));
  const win = { os: "windows", architecture: "amd64", "os.version": "10.0.17763.1" };
  assert.ok(platformMatches(p("windows", "amd64"), win));
  assert.ok(!platformMatches({ ...win, "os.version": "10.0.20348.1" }, win));
});

function entry(platform?: Platform, n = 0) {
  return {
    mediaType: OCI.manifest,
    digest: digestOf(String(n)),
    size: n,
    ...(platform ? { platform } : {}),
  };
}

Deno.test("selectManifest returns the first match and skips entries without platform", () => {
  const index: Index = {
    schemaVersion: 2,
    manifests: [
      entry(undefined, 1),
      entry({ os: "linux", architecture: "amd64" }, 2),
      entry({ os: "linux", architecture: "arm64", variant: "v8" }, 3),
      entry({ os: "linux", architecture: "arm64" }, 4),
      entry({ os: "unknown", architecture: "unknown" }, 5),
    ],
  };
  assert.equal(selectManifest(index, parsePlatform("linux/arm64")).size, 3);
  assert.equal(selectManifest(index, parsePlatform("linux/x86_64")).size, 2);
  assert.throws(
    () => selectManifest(index, parsePlatform("linux/arm/v7"), { what: "busybox:1.36" }),
    (e: unknown) => {
      assert.ok(e instanceof KanikoError);
      assert.equal(e.message, "no image for platform linux/arm/v7 in busybox:1.36");
      assert.equal(e.hint, "available platforms: linux/amd64, linux/arm64");
      assert.equal(e.code, "PLATFORM_NOT_FOUND");
      return true;
    },
  );
  assert.throws(
    () => selectManifest({ schemaVersion: 2, manifests: [entry()] }, parsePlatform("linux/amd64")),
    (e: unknown) => (e as KanikoError).hint === "the index lists no platforms",
  );
});

Deno.test("hostPlatform is normalised from Deno.build", () => {
  const host = hostPlatform();
  assert.equal(host.os, Deno.build.os);
  assert.equal(host.architecture, { x86_64: "amd64", aarch64: "arm64" }[Deno.build.arch]);
  assert.equal(formatPlatform(parsePlatform(formatPlatform(host))), formatPlatform(host));
});
