import assert from "node:assert/strict";
import { PushProgress } from "../../lib/build/push_progress.ts";
import { captureLog } from "../_helpers.ts";

const desc = (n: number, size: number) => ({
  mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
  digest: `sha256:${String(n).repeat(64).slice(0, 64)}`,
  size,
});

Deno.test("push progress: without a terminal, one plain line per finished blob", () => {
  const log = captureLog();
  try {
    const blobs = [desc(1, 2048), desc(2, 3 * 1024 * 1024)];
    const p = new PushProgress("reg.example/app:1", blobs);
    p.progress(blobs[1], 1024);
    assert.equal(log.lines.length, 0, "no line while bytes move");
    p.done(blobs[0], "exists");
    p.done(blobs[1], "uploaded");
    p.finish();
    assert.equal(log.lines.length, 2);
    assert.match(log.lines[0], /reg\.example\/app:1: sha256:111111111111 exists \(2\.0 KiB\)/);
    assert.match(log.lines[1], /sha256:222222222222 uploaded \(3\.0 MiB\)/);
  } finally {
    log.restore();
  }
});
