/**
 * How a simulated node turns a container spec into a local process: mount paths rewritten in
 * args and env, the executor in place of the entrypoint, `--isolation=chroot` appended for our
 * CLI only, secret env, and the kubelet's termination-message rules (4096 bytes; with
 * FallbackToLogsOnError the log's last 80 lines, at most 2048 bytes).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  MAX_MESSAGE,
  prepareContainer,
  rewriter,
  StartError,
  terminationMessage,
} from "../_fake_k8s/container.ts";
import type { KObject } from "../_fake_k8s/store.ts";

function pod(container: Record<string, unknown>, volumes: unknown[] = []): KObject {
  return {
    metadata: { name: "p-abcde", namespace: "ns" },
    spec: { containers: [{ name: "c", image: "i", ...container }], volumes },
  };
}

Deno.test("fake k8s container: mount paths are rewritten at the start, after = , dir:// tar://", () => {
  const rw = rewriter(new Map([["/kaniko/.docker", "/tmp/x"], ["/kaniko", "/tmp/k"]]));
  assert.equal(rw("/kaniko/.docker/config.json"), "/tmp/x/config.json");
  assert.equal(rw("--flag=/kaniko/.docker"), "--flag=/tmp/x");
  assert.equal(
    rw("--registry-certificate=h=/kaniko/ca.crt"),
    "--registry-certificate=h=/tmp/k/ca.crt",
  );
  assert.equal(rw("a=/kaniko/a,b=/kaniko/b"), "a=/tmp/k/a,b=/tmp/k/b");
  assert.equal(rw("/kanikox/y"), "/kanikox/y", "only whole path components");
  assert.equal(rw("--context=dir:///kaniko/ctx"), "--context=dir:///tmp/k/ctx");
  assert.equal(rw("tar:///kaniko/c.tgz"), "tar:///tmp/k/c.tgz");
  assert.equal(rw("x/kaniko/y"), "x/kaniko/y", "not inside other words");
});

Deno.test("fake k8s container: executor, args, env and --isolation", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const secrets: Record<string, KObject> = {
      s: { metadata: { name: "s" }, data: { token: btoa("t0k3n") } },
    };
    const p = pod({
      command: ["/kaniko/executor", "--verbosity=info"],
      args: ["--digest-file=/dev/termination-log", "-d", "r/x:1"],
      env: [
        { name: "A", value: "/cache/a" },
        { name: "T", valueFrom: { secretKeyRef: { name: "s", key: "token" } } },
      ],
      volumeMounts: [{ name: "cache", mountPath: "/cache" }],
    }, [{ name: "cache", emptyDir: {} }]);
    const opts = {
      executor: ["cli"],
      appendIsolation: true,
      podDir: dir,
      secret: (n: string) => secrets[n],
    };
    const c = await prepareContainer(p, opts);
    assert.deepEqual(c.argv, [
      "cli",
      "--verbosity=info",
      `--digest-file=${join(dir, "termination-log")}`,
      "-d",
      "r/x:1",
      "--isolation=chroot",
    ]);
    assert.equal(c.env.A, join(dir, "volumes/cache/a"));
    assert.equal(c.env.T, "t0k3n");
    assert.equal(c.env.KANIKO_DIR, join(dir, "kaniko"));
    const given = await prepareContainer(pod({ args: ["--isolation=none"] }), opts);
    assert.deepEqual(given.argv, ["cli", "--isolation=none"], "an --isolation flag is kept as is");
    const script = await prepareContainer(pod({ args: ["x"] }), {
      ...opts,
      appendIsolation: false,
    });
    assert.deepEqual(script.argv, ["cli", "x"]);
    const missing = pod({
      env: [{ name: "T", valueFrom: { secretKeyRef: { name: "nope", key: "k" } } }],
    });
    await assert.rejects(
      () => prepareContainer(missing, opts),
      (e) =>
        e instanceof StartError && e.reason === "CreateContainerConfigError" &&
        /secret "nope" not found/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fake k8s container: termination messages follow the kubelet's limits", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "t");
    await Deno.writeTextFile(file, "x".repeat(5000));
    assert.equal((await terminationMessage(file, "File", 0, "")).length, MAX_MESSAGE);
    await Deno.writeTextFile(file, "");
    const log = Array.from({ length: 100 }, (_, i) => `line ${i}`).join("\n") + "\n";
    assert.equal(await terminationMessage(file, "File", 1, log), "", "File: the log is not used");
    assert.equal(
      await terminationMessage(file, "FallbackToLogsOnError", 0, log),
      "",
      "only on failure",
    );
    const tail = await terminationMessage(file, "FallbackToLogsOnError", 1, log);
    assert.equal(tail.split("\n").length, 80);
    assert.ok(tail.startsWith("line 20\n") && tail.endsWith("line 99"));
    const long = Array.from({ length: 80 }, () => "y".repeat(100)).join("\n");
    assert.equal(
      new TextEncoder().encode(await terminationMessage(file, "FallbackToLogsOnError", 1, long))
        .length,
      2048,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
