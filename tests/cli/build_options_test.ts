import assert from "node:assert/strict";
import { hostPlatform } from "../../lib/cli/build_flags.ts";
import type { BuildOptions } from "../../lib/cli/options.ts";
import { defaultRegistryOptions } from "../../lib/registry/options.ts";
import { build, usage } from "./helpers.ts";

const DEFAULTS: BuildOptions = {
  context: "/workspace/",
  contextSubPath: undefined,
  bucket: undefined,
  git: { branch: "", singleBranch: false, recurseSubmodules: false, insecureSkipTls: false },
  dockerfile: "Dockerfile",
  buildArgs: [],
  target: undefined,
  skipUnusedStages: false,
  labels: {},
  customPlatform: hostPlatform(),
  secrets: [],
  force: false,
  kanikoDir: "/kaniko",
  isolation: undefined,
  destinations: [],
  noPush: true,
  noPushCache: false,
  pushIgnoreImmutableTagErrors: false,
  skipPushPermissionCheck: false,
  imageFsExtractRetry: 0,
  tarPath: undefined,
  ociLayoutPath: undefined,
  digestFile: undefined,
  imageNameWithDigestFile: undefined,
  imageNameTagWithDigestFile: undefined,
  compression: "gzip",
  compressionLevel: -1,
  reproducible: false,
  forceBuildMetadata: false,
  cache: false,
  cacheRepo: undefined,
  cacheDir: "/cache",
  cacheTtl: 336 * 3_600_000,
  cacheCopyLayers: false,
  cacheRunLayers: true,
  compressedCaching: true,
  snapshotMode: "full",
  singleSnapshot: false,
  useNewRun: false,
  ignorePaths: [],
  ignoreVarRun: true,
  cleanup: false,
  multiPlatform: [],
  driver: "local",
  publishIndex: false,
  legacyManifestList: false,
  ociMode: "auto",
  indexAnnotations: {},
  digestsFrom: undefined,
  requireNativeNodes: true,
  archCacheRepoSuffix: "-${ARCH}",
  dryRun: false,
  signImages: false,
  cosignKey: undefined,
  cosignKeyPassword: undefined,
  registry: defaultRegistryOptions(),
};

Deno.test("build is the default command; defaults are Kaniko's", () => {
  const invocation = build(["--no-push"]);
  assert.deepEqual(invocation.options, DEFAULTS);
  assert.deepEqual(invocation.log, { level: "info", format: "color", timestamp: false });
  assert.deepEqual(invocation.warnings, []);
  assert.deepEqual(build(["build", "--no-push"]).options, DEFAULTS);
});

Deno.test("a typical Kaniko executor line maps to BuildOptions", () => {
  const { options } = build([
    "--context=dir:///workspace",
    "--dockerfile",
    "Dockerfile.prod",
    "-d",
    "reg.example/app:1",
    "--destination=reg.example/app:latest",
    "--build-arg",
    "K=V",
    "--build-arg=X=a=b",
    "--cache=true",
    "--cache-repo=reg.example/cache",
    "--cache-ttl=6h",
    "--snapshot-mode",
    "redo",
    "--label",
    "a=b",
    "--label=c=d=e",
    "--reproducible",
    "--single-snapshot=false",
    "--compression",
    "zstd",
    "--compression-level=3",
    "--ignore-path",
    "/a",
    "--ignore-path=/b",
    "--target",
    "build",
    "--skip-unused-stages",
    "--custom-platform=linux/arm64",
    "--tar-path",
    "out.tar",
    "--digest-file=/d",
    "--oci-layout-path=/o",
    "--image-name-with-digest-file=/n",
    "--image-name-tag-with-digest-file=/t",
    "--push-retry",
    "3",
    "--image-download-retry=2",
    "--force",
    "--cleanup",
    "--ignore-var-run=false",
    "--cache-run-layers=false",
    "--cache-copy-layers",
    "--compressed-caching=false",
  ]);
  assert.deepEqual(options, {
    ...DEFAULTS,
    context: "dir:///workspace",
    dockerfile: "Dockerfile.prod",
    destinations: ["reg.example/app:1", "reg.example/app:latest"],
    noPush: false,
    buildArgs: ["K=V", "X=a=b"],
    cache: true,
    cacheRepo: "reg.example/cache",
    cacheTtl: 6 * 3_600_000,
    snapshotMode: "redo",
    labels: { a: "b", c: "d=e" },
    reproducible: true,
    compression: "zstd",
    compressionLevel: 3,
    ignorePaths: ["/a", "/b"],
    target: "build",
    skipUnusedStages: true,
    customPlatform: "linux/arm64",
    tarPath: "out.tar",
    digestFile: "/d",
    ociLayoutPath: "/o",
    imageNameWithDigestFile: "/n",
    imageNameTagWithDigestFile: "/t",
    force: true,
    cleanup: true,
    ignoreVarRun: false,
    cacheRunLayers: false,
    cacheCopyLayers: true,
    compressedCaching: false,
    registry: { ...defaultRegistryOptions(), pushRetry: 3, imageDownloadRetry: 2 },
  });
});

Deno.test("short flags -c -f -d -v -b, with separate and attached values", () => {
  const invocation = build(["-c", "/ctx", "-f=Df", "-dreg/a:1", "-v", "debug", "-b", "bkt"]);
  assert.equal(invocation.options.context, "/ctx");
  assert.equal(invocation.options.dockerfile, "Df");
  assert.deepEqual(invocation.options.destinations, ["reg/a:1"]);
  assert.equal(invocation.options.bucket, "bkt");
  assert.equal(invocation.log.level, "debug");
});

Deno.test("multi-platform, OCI and signing flags", () => {
  const { options } = build([
    "-d",
    "reg/app:1",
    "--multi-platform",
    "linux/amd64,linux/arm64",
    "--platform=linux/arm/v7",
    "--driver=ci",
    "--publish-index",
    "--oci-mode",
    "docker",
    "--legacy-manifest-list=true",
    "--index-annotations",
    "a=1,b=2",
    "--index-annotations=c=x,y",
    "--digests-from",
    "/digests",
    "--require-native-nodes=false",
    "--arch-cache-repo-suffix=-cache",
    "--dry-run",
    "--sign-images",
    "--cosign-key-path",
    "cosign.key",
    "--cosign-key-password=pw-123",
    "--isolation=chroot",
  ]);
  assert.deepEqual(options.multiPlatform, ["linux/amd64", "linux/arm64", "linux/arm/v7"]);
  assert.equal(options.driver, "ci");
  assert.equal(options.publishIndex, true);
  assert.equal(options.ociMode, "docker");
  assert.equal(options.legacyManifestList, true);
  assert.deepEqual(options.indexAnnotations, { a: "1", b: "2", c: "x,y" });
  assert.equal(options.digestsFrom, "/digests");
  assert.equal(options.requireNativeNodes, false);
  assert.equal(options.archCacheRepoSuffix, "-cache");
  assert.equal(options.dryRun, true);
  assert.equal(options.signImages, true);
  assert.equal(options.cosignKey, "cosign.key");
  assert.equal(options.cosignKeyPassword, "pw-123");
  assert.equal(options.isolation, "chroot");
});

Deno.test("registry flags map to RegistryOptions", () => {
  const { options } = build([
    "--no-push",
    "--insecure",
    "--insecure-pull=true",
    "--insecure-registry",
    "a.example:5000",
    "--insecure-registry=b.example",
    "--skip-tls-verify",
    "--skip-tls-verify-pull",
    "--skip-tls-verify-registry=c.example",
    "--registry-certificate",
    "c.example=/certs/ca.pem",
    "--registry-client-cert=d.example=/c/cert.pem,/c/key.pem",
    "--registry-mirror=mirror.gcr.io",
    "--registry-map",
    "index.docker.io=m1.example;gcr.io=m2.example/gcr",
    "--registry-map=index.docker.io=m3.example",
    "--skip-default-registry-fallback",
    "--push-retry=5",
    "--push-retry-initial-delay=200",
    "--push-retry-max-delay",
    "5000",
    "--image-download-retry=1",
  ], { DOCKER_CONFIG: "/kaniko/.docker" });
  assert.deepEqual(options.registry, {
    ...defaultRegistryOptions(),
    insecure: true,
    insecurePull: true,
    insecureRegistries: ["a.example:5000", "b.example"],
    skipTlsVerify: true,
    skipTlsVerifyPull: true,
    skipTlsVerifyRegistries: ["c.example"],
    registryCertificates: { "c.example": "/certs/ca.pem" },
    registryClientCerts: { "d.example": { cert: "/c/cert.pem", key: "/c/key.pem" } },
    registryMirrors: ["mirror.gcr.io"],
    registryMap: {
      "index.docker.io": ["m1.example", "m3.example"],
      "gcr.io": ["m2.example/gcr"],
    },
    skipDefaultRegistryFallback: true,
    dockerConfigDir: "/kaniko/.docker",
    pushRetry: 5,
    pushRetryInitialDelay: 200,
    pushRetryMaxDelay: 5000,
    imageDownloadRetry: 1,
  });
});

Deno.test("environment: KANIKO_NO_PUSH, KANIKO_DIR, mirrors, maps, COSIGN_PASSWORD", () => {
  const env = {
    KANIKO_NO_PUSH: "true",
    KANIKO_DIR: "/tmp/kaniko",
    KANIKO_REGISTRY_MIRROR: "m1.example,m2.example",
    KANIKO_REGISTRY_MAP: "gcr.io=m3.example",
    COSIGN_PASSWORD: "from-env",
  };
  const { options, warnings } = build(["--registry-mirror=flag.example"], env);
  assert.equal(options.noPush, true);
  assert.equal(options.kanikoDir, "/tmp/kaniko");
  assert.deepEqual(options.registry.registryMirrors, ["flag.example", "m1.example", "m2.example"]);
  assert.deepEqual(options.registry.registryMap, { "gcr.io": ["m3.example"] });
  assert.equal(options.cosignKeyPassword, "from-env");
  assert.deepEqual(warnings, []);
  // Flags win over the environment.
  const flagged = build(["--no-push=false", "-d", "r/a", "--kaniko-dir=/k"], env).options;
  assert.equal(flagged.noPush, false);
  assert.equal(flagged.kanikoDir, "/k");
});

Deno.test("an unreadable KANIKO_NO_PUSH is ignored with a warning", () => {
  const { options, warnings } = build(["-d", "r/a"], { KANIKO_NO_PUSH: "maybe" });
  assert.equal(options.noPush, false);
  assert.match(warnings[0], /KANIKO_NO_PUSH/);
});

Deno.test("a bare --build-arg takes its value from the environment, or is dropped", () => {
  const { options } = build(
    ["--no-push", "--build-arg", "FROM_ENV", "--build-arg=UNSET", "--build-arg", "E="],
    { FROM_ENV: "v=1 2" },
  );
  assert.deepEqual(options.buildArgs, ["FROM_ENV=v=1 2", "E="]);
  usage(["--no-push", "--build-arg", "=x"], /--build-arg: expected NAME=VALUE or NAME/);
});

Deno.test("deprecated aliases still work and warn", () => {
  const { options, warnings } = build([
    "--no-push",
    "--snapshotMode=time",
    "--customPlatform",
    "linux/arm64",
    "--tarPath=/out.tar",
    "--whitelist-var-run=false",
  ]);
  assert.equal(options.snapshotMode, "time");
  assert.equal(options.customPlatform, "linux/arm64");
  assert.equal(options.tarPath, "/out.tar");
  assert.equal(options.ignoreVarRun, false);
  assert.deepEqual(warnings, [
    "Flag --snapshotMode is deprecated. Use: --snapshot-mode",
    "Flag --customPlatform is deprecated. Use: --custom-platform",
    "Flag --tarPath is deprecated. Use: --tar-path",
    "Flag --whitelist-var-run is deprecated. Use: --ignore-var-run",
  ]);
});

Deno.test("--secret forms", () => {
  const { options } = build([
    "--no-push",
    "--secret",
    "id=npm,src=/run/npmrc",
    "--secret=id=gh,env=GH_TOKEN",
    "--secret=id=aws,type=env",
    "--secret=src=/s/cert.pem",
    "--secret=id=HOME_VAR",
    "--secret=id=plainfile",
  ], { HOME_VAR: "x" });
  assert.deepEqual(options.secrets, [
    { id: "npm", src: "/run/npmrc" },
    { id: "gh", env: "GH_TOKEN" },
    { id: "aws", env: "aws" },
    { id: "cert.pem", src: "/s/cert.pem" },
    { id: "HOME_VAR", env: "HOME_VAR" },
    { id: "plainfile", src: "plainfile" },
  ]);
  usage(["--no-push", "--secret=id=a,src=/x,env=Y"], /sets both src and env/);
  usage(["--no-push", "--secret=id=a,mode=0400"], /invalid key 'mode' in --secret/);
  usage(
    ["--no-push", "--secret=id=a,src=/x", "--secret=id=a,env=Y"],
    /--secret id 'a' is given twice/,
  );
});

Deno.test("--git options", () => {
  const { options } = build([
    "--no-push",
    "--git",
    "branch=release/1.0,single-branch=true",
    "--git=recurse-submodules=true",
  ]);
  assert.deepEqual(options.git, {
    branch: "release/1.0",
    singleBranch: true,
    recurseSubmodules: true,
    insecureSkipTls: false,
  });
  usage(["--no-push", "--git=depth=1"], /invalid key 'depth' in --git/);
  usage(["--no-push", "--git=single-branch=maybe"], /--git single-branch/);
});

Deno.test("flag combinations Kaniko rejects are usage errors", () => {
  usage([], /you must provide --destination, or use --no-push/);
  usage(["--no-push", "--cache"], /specify cache repo with --cache-repo/);
  usage(["--no-push", "--image-name-with-digest-file=/f"], /--destination/);
  usage(["--no-push", "--image-name-tag-with-digest-file=/f"], /--destination/);
  usage(["--no-push", "--publish-index"], /--publish-index needs a --destination/);
  usage(["--no-push", "--legacy-manifest-list", "--oci-mode=oci"], /conflicts/);
  usage(["--no-push", "--sign-images"], /--sign-images needs --cosign-key/);
  usage(["--no-push", "--multi-platform=linux/amd64,linux/amd64"], /linux\/amd64 twice/);
  usage(["--no-push", "--push-retry-max-delay=10"], /--push-retry-max-delay/);
  // --dry-run plans without pushing, so no destination is needed.
  assert.equal(build(["--dry-run"]).options.dryRun, true);
});
