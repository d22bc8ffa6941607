import assert from "node:assert/strict";
import { COMMANDS } from "../../lib/cli/commands.ts";
import { defaultRegistryOptions } from "../../lib/registry/options.ts";
import { build, type Of, parse, usage } from "./helpers.ts";

Deno.test("bad values and unknown flags are one-line usage errors naming the flag", () => {
  usage(["--no-push", "--push-retry=x"], /'x' for --push-retry: expected a whole number/);
  usage(["--no-push", "--image-download-retry", "-2"], /--image-download-retry/);
  usage(["--no-push", "--verbosity=loud"], /'loud' for --verbosity: expected one of trace/);
  usage(
    ["--no-push", "--log-format=xml"],
    /'xml' for --log-format: expected one of text, color, json/,
  );
  usage(
    ["--no-push", "--driver", "docker"],
    /'docker' for --driver: expected one of local, k8s, ci/,
  );
  usage(["--no-push", "--oci-mode=v2"], /--oci-mode: expected one of oci, auto, docker/);
  usage(["--no-push", "--compression=lz4"], /--compression: expected one of gzip, zstd/);
  usage(["--no-push", "--snapshot-mode=fast"], /--snapshot-mode: expected one of full, redo, time/);
  usage(["--no-push", "--isolation=vm"], /--isolation: expected one of chroot, none/);
  usage(["--no-push", "--cache-ttl=forever"], /--cache-ttl/);
  usage(
    ["--no-push", "--registry-certificate=nohost"],
    /--registry-certificate: expected HOST=PATH/,
  );
  usage(["--no-push", "--registry-client-cert=h=/cert"], /expected HOST=CERT,KEY/);
  usage(["--no-push", "--registry-map=nomap"], /--registry-map: expected ORIG=NEW/);
  usage(["--no-push", "--label=novalue"], /--label: expected KEY=VALUE/);
  usage(["--no-push", "--custom-platform=arm64"], /--custom-platform: expected os\/arch/);
  usage(["--no-push", "--cache=maybe"], /--cache: expected --cache, --cache=true or --cache=false/);
  usage(["--no-push", "--destination"], /--destination/);
  usage(
    ["--no-push", "--destinaton=r/a"],
    /unknown flag --destinaton for build; did you mean --destination\?/,
  );
  usage(["--no-push", "stray"], /unexpected argument 'stray' for build/);
});

Deno.test("an unknown flag's value is not echoed (it may be a secret)", () => {
  const err = usage(
    ["--no-push", "--registry-pasword=hunter2"],
    /unknown flag --registry-pasword /,
  );
  assert.ok(!err.message.includes("hunter2"));
});

Deno.test("copy, manifest, digest and tags take registry and retry flags", () => {
  const copy = parse([
    "copy",
    "reg.a/x:1",
    "oci:/tmp/layout:1",
    "--all",
    "--upload-chunk-size=5MiB",
    "--jobs",
    "8",
    "--insecure-registry=reg.a",
    "--push-retry=2",
  ]) as Of<"copy">;
  assert.equal(copy.command, "copy");
  assert.equal(copy.src, "reg.a/x:1");
  assert.equal(copy.dst, "oci:/tmp/layout:1");
  assert.equal(copy.options.all, true);
  assert.equal(copy.options.platform, undefined);
  assert.deepEqual(copy.options.registry, {
    ...defaultRegistryOptions(),
    insecureRegistries: ["reg.a"],
    pushRetry: 2,
    uploadChunkSize: 5 * 1024 * 1024,
    concurrency: 8,
  });
  const manifest = parse(["manifest", "--platform", "linux/arm64", "reg.a/x:1"]) as Of<"manifest">;
  assert.equal(manifest.ref, "reg.a/x:1");
  assert.equal(manifest.options.platform, "linux/arm64");
  assert.deepEqual(manifest.options.registry, defaultRegistryOptions());
  const digest = parse(["digest", "reg.a/x:1", "--skip-tls-verify", "-v=trace"]) as Of<"digest">;
  assert.equal(digest.command, "digest");
  assert.equal(digest.options.registry.skipTlsVerify, true);
  assert.equal(digest.log.level, "trace");
  const tags = parse(["tags", "reg.a/x", "--image-download-retry=4"]) as Of<"tags">;
  assert.equal(tags.repo, "reg.a/x");
  assert.equal(tags.options.registry.imageDownloadRetry, 4);
});

Deno.test("utility command usage errors", () => {
  usage(["copy", "a", "b", "--all", "--platform=linux/amd64"], /--all and --platform/);
  usage(["copy", "a", "b", "--jobs=0"], /--jobs: expected a whole number, 1 or more/);
  usage(["copy", "a"], /copy is missing argument 'DST'/);
  usage(["manifest", "a", "b"], /unexpected argument 'b' for manifest/);
  usage(["tags", "r", "--platform=linux/amd64"], /unknown flag --platform for tags/);
  usage(["digest", "r", "--platform=amd64"], /--platform: expected os\/arch/);
  usage(["frobnicate"], /unknown command 'frobnicate'/);
  usage(["-v", "debug", "copy", "a", "b"], /put the command first: kaniko copy/);
});

Deno.test("parse command options", () => {
  const invocation = parse(
    ["parse", "-f", "Df", "--build-arg", "A=1", "--build-arg", "B", "--target=t", "--raw"],
    { B: "2" },
  ) as Of<"parse">;
  assert.deepEqual(invocation.options, {
    dockerfile: "Df",
    buildArgs: ["A=1", "B=2"],
    target: "t",
    platform: undefined,
    raw: true,
  });
  const defaults = parse(["parse", "--platform=linux/arm64"]) as Of<"parse">;
  assert.equal(defaults.options.dockerfile, "Dockerfile");
  assert.equal(defaults.options.raw, false);
  assert.equal(defaults.options.platform, "linux/arm64");
});

Deno.test("logging flags", () => {
  const invocation = build([
    "--no-push",
    "--verbosity=WARNING",
    "--log-format",
    "json",
    "--log-timestamp",
  ]);
  assert.deepEqual(invocation.log, { level: "warn", format: "json", timestamp: true });
});

Deno.test("help: --help, -h, help and COMMAND help list every visible flag", () => {
  for (const argv of [["--help"], ["-h"], ["help"]]) {
    const invocation = parse(argv);
    assert.equal(invocation.command, "help");
    const text = (invocation as Of<"help">).text;
    for (const command of COMMANDS) assert.ok(text.includes(command.name));
    assert.match(text, /--destination/);
  }
  for (const command of COMMANDS) {
    for (const argv of [[command.name, "--help"], ["help", command.name], [command.name, "help"]]) {
      const invocation = parse(argv);
      assert.equal(invocation.command, "help", argv.join(" "));
      const text = (invocation as Of<"help">).text;
      for (const flag of command.flags.filter((f) => !f.hidden)) {
        assert.ok(text.includes(`--${flag.name}`), `${argv.join(" ")}: --${flag.name}`);
      }
    }
  }
  const text = (parse(["build", "-h"]) as Of<"help">).text;
  assert.match(text, /--cache-ttl <duration>.*\(default: 336h\)/);
  assert.match(text, /--driver <mode>.*default: "local"/);
  assert.match(text, /--require-native-nodes .*\(default: true\)/);
  assert.match(text, /--no-push .*\(default: false\)/);
});

Deno.test("version", () => {
  assert.deepEqual(parse(["version"]), { command: "version" });
  assert.deepEqual(parse(["--version"]), { command: "version" });
});
