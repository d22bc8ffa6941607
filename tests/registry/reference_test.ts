import assert from "node:assert/strict";
import { KanikoError, UsageError } from "../../lib/errors.ts";
import { defaultRegistryOptions } from "../../lib/registry/options.ts";
import {
  apiHost,
  normalizeRegistry,
  parseMapping,
  parseReference,
  parseRepository,
  pullCandidates,
  Reference,
} from "../../lib/registry/reference.ts";

const H64 = "f".repeat(64);
const D256 = `sha256:${H64}`;
const D512 = `sha512:${"f".repeat(128)}`;

type Ok = [input: string, registry: string, repository: string, tag?: string, digest?: string];

// Valid references: Docker's own examples (distribution/reference tests) and ours.
const VALID: Ok[] = [
  ["busybox", "docker.io", "library/busybox", "latest"],
  ["busybox:1.36", "docker.io", "library/busybox", "1.36"],
  ["user/img", "docker.io", "user/img", "latest"],
  ["user/img:v1", "docker.io", "user/img", "v1"],
  ["docker.io/busybox", "docker.io", "library/busybox", "latest"],
  ["docker.io/library/busybox:1.36", "docker.io", "library/busybox", "1.36"],
  ["index.docker.io/busybox", "docker.io", "library/busybox", "latest"],
  ["index.docker.io/user/img:t", "docker.io", "user/img", "t"],
  ["test_com", "docker.io", "library/test_com", "latest"],
  ["test.com:tag", "docker.io", "library/test.com", "tag"],
  ["test.com:5000", "docker.io", "library/test.com", "5000"],
  ["test.com/repo:tag", "test.com", "repo", "tag"],
  ["test:5000/repo", "test:5000", "repo", "latest"],
  ["test:5000/repo:tag", "test:5000", "repo", "tag"],
  [`test:5000/repo@${D256}`, "test:5000", "repo", undefined, D256],
  [`test:5000/repo:tag@${D256}`, "test:5000", "repo", "tag", D256],
  [`img:1@${D256}`, "docker.io", "library/img", "1", D256],
  ["lowercase:Uppercase", "docker.io", "library/lowercase", "Uppercase"],
  ["sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com", "bar/baz/quux", "latest"],
  [
    "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
    "sub-dom1.foo.com",
    "bar/baz/quux",
    "some-long-tag",
  ],
  [
    "b.gcr.io/test.example.com/my-app:test.example.com",
    "b.gcr.io",
    "test.example.com/my-app",
    "test.example.com",
  ],
  ["xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", "xn--n3h.com"],
  [`xn--7o8h.com/myimage:xn--7o8h.com@${D512}`, "xn--7o8h.com", "myimage", "xn--7o8h.com", D512],
  ["foo_bar.com:8080", "docker.io", "library/foo_bar.com", "8080"],
  ["foo/foo_bar.com:8080", "docker.io", "foo/foo_bar.com", "8080"],
  ["localhost/repo", "localhost", "repo", "latest"],
  ["localhost:5000/a/b/c:1", "localhost:5000", "a/b/c", "1"],
  ["127.0.0.1:5000/x", "127.0.0.1:5000", "x", "latest"],
  ["[::1]:5000/repo", "[::1]:5000", "repo", "latest"],
  ["[2001:db8::1]/repo", "[2001:db8::1]", "repo", "latest"],
  ["[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]", "repo", "tag"],
  ["[2001:db8::]:5000/repo", "[2001:db8::]:5000", "repo", "latest"],
  ["Foo/bar", "Foo", "bar", "latest"], // an uppercase first component is a host
  ["a__b", "docker.io", "library/a__b", "latest"],
  ["a--b/c-d.e_f", "docker.io", "a--b/c-d.e_f", "latest"],
  ["gcr.io/distroless/static:nonroot", "gcr.io", "distroless/static", "nonroot"],
  ["x:_under", "docker.io", "library/x", "_under"],
  [`r:${"t".repeat(128)}`, "docker.io", "library/r", "t".repeat(128)],
];

// Invalid references and a fragment of the expected message.
const INVALID: [string, RegExp][] = [
  ["", /empty/],
  [":justtag", /repository name is missing/],
  [`@${D256}`, /repository name is missing/],
  ["repo@sha256:ffff", /digest is malformed/],
  [`validname@invaliddigest:${H64}`, /unsupported digest algorithm "invaliddigest"/],
  [`repo@sha256:${"F".repeat(64)}`, /expected 64 lowercase hex digits/],
  [`repo@sha384:${H64}`, /expected 96 lowercase hex digits/],
  ["Uppercase:tag", /repository name must be lowercase/],
  ["Foo:bar", /repository name must be lowercase/],
  ["test:5000/Uppercase/lowercase:tag", /repository name must be lowercase/],
  ["docker.io/User/img", /repository name must be lowercase/],
  ["aa/asdf$$^/aa", /invalid reference format/],
  ["a b", /invalid reference format/],
  ["a/b//c", /invalid reference format/],
  ["a___b", /invalid reference format/],
  ["a-_b", /invalid reference format/],
  ["-a", /invalid reference format/],
  ["img:-x", /invalid tag "-x"/],
  [`r:${"t".repeat(129)}`, /invalid tag/],
  ["[2001:db8::1]", /invalid reference format/],
  ["[fe80::1%eth0]:5000/repo", /invalid reference format/],
  ["[2001:db8::1]:tag/repo", /invalid reference format/],
  [H64, /image ID/],
  [`${"a/".repeat(128)}a`, /longer than 255/],
];

Deno.test("parseReference: valid references normalise like Docker", () => {
  for (const [input, registry, repository, tag, digest] of VALID) {
    const ref = parseReference(input);
    assert.deepEqual(
      { registry: ref.registry, repository: ref.repository, tag: ref.tag, digest: ref.digest },
      { registry, repository, tag, digest },
      input,
    );
  }
});

Deno.test("parseReference: invalid references fail with one clear line", () => {
  for (const [input, pattern] of INVALID) {
    assert.throws(
      () => parseReference(input),
      (e: unknown) => {
        assert.ok(e instanceof KanikoError, input);
        assert.equal(e.exitCode, 1, input);
        assert.match(e.message, pattern, input);
        assert.ok(e.message.startsWith(`invalid reference "`), e.message);
        assert.ok(!e.message.includes("\n"));
        return true;
      },
    );
  }
});

Deno.test("parseReference: the brief's uppercase message, and usage errors exit 2", () => {
  assert.throws(() => parseReference("Foo:bar"), {
    message: 'invalid reference "Foo:bar": repository name must be lowercase',
  });
  assert.throws(
    () => parseReference("Foo:bar", { usage: true }),
    (e: unknown) => e instanceof UsageError && e.exitCode === 2,
  );
});

Deno.test("parseReference: total name length limit counts the registry", () => {
  const repo = "a".repeat(255 - "docker.io/library/".length);
  assert.equal(parseReference(repo).repository, `library/${repo}`);
  assert.throws(() => parseReference(`${repo}a`), /longer than 255/);
});

Deno.test("Reference: string forms, identifier, withTag/withDigest", () => {
  const ref = parseReference("busybox:1.36");
  assert.equal(ref.toString(), "docker.io/library/busybox:1.36");
  assert.equal(`${ref}`, "docker.io/library/busybox:1.36");
  assert.equal(ref.familiar(), "busybox:1.36");
  assert.equal(ref.name, "docker.io/library/busybox");
  assert.equal(ref.identifier, "1.36");
  const pinned = ref.withDigest(D256);
  assert.equal(pinned.toString(), `docker.io/library/busybox:1.36@${D256}`);
  assert.equal(pinned.identifier, D256, "the digest wins for fetching");
  const retagged = pinned.withTag("2");
  assert.equal(retagged.toString(), "docker.io/library/busybox:2");
  assert.equal(retagged.digest, undefined);
  assert.equal(parseReference("user/img").familiar(), "user/img:latest");
  assert.equal(parseReference("docker.io/library/a/b").familiar(), "library/a/b:latest");
  assert.equal(parseReference("localhost:5000/x:1").familiar(), "localhost:5000/x:1");
  assert.throws(
    () => ref.withTag("bad tag"),
    /invalid tag "bad tag" for docker.io\/library\/busybox/,
  );
  assert.throws(() => ref.withDigest("sha256:abc"), KanikoError);
  assert.equal(ref.repositoryOnly().toString(), "docker.io/library/busybox");
});

Deno.test("parseReference: defaultTag false leaves the tag absent", () => {
  const ref = parseReference("busybox", { defaultTag: false });
  assert.equal(ref.tag, undefined);
  assert.equal(ref.identifier, "latest");
  assert.equal(ref.toString(), "docker.io/library/busybox");
  assert.equal(parseReference(`busybox@${D256}`).tag, undefined, "no default tag with a digest");
});

Deno.test("parseRepository: no tag or digest allowed", () => {
  assert.equal(parseRepository("busybox").toString(), "docker.io/library/busybox");
  assert.equal(parseRepository("localhost:5000/a/b").name, "localhost:5000/a/b");
  assert.throws(
    () => parseRepository("busybox:1"),
    /invalid repository "busybox:1": a repository has no tag/,
  );
  assert.throws(() => parseRepository(`busybox@${D256}`), /has no tag or digest/);
  assert.throws(() => parseRepository("Bad:x"), /must be lowercase/);
});

Deno.test("apiHost and normalizeRegistry", () => {
  assert.equal(apiHost("docker.io"), "registry-1.docker.io");
  assert.equal(apiHost("index.docker.io"), "registry-1.docker.io");
  assert.equal(apiHost("localhost:5000"), "localhost:5000");
  assert.equal(apiHost("[::1]:5000"), "[::1]:5000");
  assert.equal(normalizeRegistry("INDEX.docker.io"), "docker.io");
  assert.equal(normalizeRegistry("gcr.io"), "gcr.io");
});

Deno.test("pullCandidates: no mapping is the original only", () => {
  const ref = parseReference("busybox:1.36");
  assert.deepEqual(pullCandidates(ref, defaultRegistryOptions()).map(String), [ref.toString()]);
});

Deno.test("pullCandidates: map entries in order, with prefixes, then the original", () => {
  const options = {
    ...defaultRegistryOptions(),
    registryMap: {
      "index.docker.io": ["mirror.gcr.io", "harbor.local:8443/dockerhub"],
      "gcr.io": ["other.io/p/q/"],
    },
    registryMirrors: ["https://mirror.example.com/"],
  };
  const ref = parseReference(`busybox:1.36@${D256}`);
  assert.deepEqual(pullCandidates(ref, options).map(String), [
    `mirror.gcr.io/library/busybox:1.36@${D256}`,
    `harbor.local:8443/dockerhub/library/busybox:1.36@${D256}`,
    `mirror.example.com/library/busybox:1.36@${D256}`,
    `docker.io/library/busybox:1.36@${D256}`,
  ]);
  assert.deepEqual(pullCandidates(parseReference("gcr.io/x/y:1"), options).map(String), [
    "other.io/p/q/x/y:1",
    "gcr.io/x/y:1",
  ]);
  assert.deepEqual(pullCandidates(parseReference("quay.io/x/y:1"), options).map(String), [
    "quay.io/x/y:1",
  ]);
});

Deno.test("pullCandidates: docker.io key, mirrors only for Docker Hub, skip fallback", () => {
  const base = { ...defaultRegistryOptions(), registryMirrors: ["m1.io", "m2.io:5000"] };
  const ref = parseReference("user/img");
  assert.deepEqual(pullCandidates(ref, base).map(String), [
    "m1.io/user/img:latest",
    "m2.io:5000/user/img:latest",
    "docker.io/user/img:latest",
  ]);
  const skip = { ...base, skipDefaultRegistryFallback: true };
  assert.deepEqual(pullCandidates(ref, skip).map(String), [
    "m1.io/user/img:latest",
    "m2.io:5000/user/img:latest",
  ]);
  // Without a mapping for the registry the original is used even with skip-fallback.
  assert.deepEqual(pullCandidates(parseReference("ghcr.io/a/b"), skip).map(String), [
    "ghcr.io/a/b:latest",
  ]);
  const byDockerIo = { ...defaultRegistryOptions(), registryMap: { "docker.io": ["m.io/pre"] } };
  assert.deepEqual(pullCandidates(ref, byDockerIo).map(String), [
    "m.io/pre/user/img:latest",
    "docker.io/user/img:latest",
  ]);
  const dup = { ...defaultRegistryOptions(), registryMirrors: ["m.io", "m.io"] };
  assert.equal(pullCandidates(ref, dup).length, 2, "duplicates are tried once");
});

Deno.test("parseMapping: validation", () => {
  assert.deepEqual(parseMapping("mirror.gcr.io"), { host: "mirror.gcr.io", prefix: "" });
  assert.deepEqual(parseMapping("h:5000/a/b"), { host: "h:5000", prefix: "a/b/" });
  assert.deepEqual(parseMapping("index.docker.io"), { host: "docker.io", prefix: "" });
  assert.throws(() => parseMapping("bad host!"), UsageError);
  assert.throws(() => parseMapping("h.io/Upper"), /bad repository prefix "Upper"/);
});

Deno.test("Reference is constructible from parts", () => {
  const ref = new Reference({ registry: "r.io", repository: "a", digest: D256 });
  assert.equal(ref.toString(), `r.io/a@${D256}`);
  assert.equal(ref.tag, undefined);
});
