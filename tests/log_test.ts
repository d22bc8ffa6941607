import assert from "node:assert/strict";
import {
  addSecret,
  configureLog,
  log,
  logConfig,
  parseLogLevel,
  redact,
  resetLog,
} from "../lib/log.ts";

const FIXED = new Date("2026-01-02T03:04:05.678Z");

function capture(settings: Parameters<typeof configureLog>[0], color = false): string[] {
  resetLog();
  const lines: string[] = [];
  configureLog(settings, { write: (line) => lines.push(line), color, now: () => FIXED });
  return lines;
}

Deno.test("json format: one object per line with level, msg, fields", () => {
  const lines = capture({ level: "info", format: "json", timestamp: false });
  log.info("pushing image", { ref: "reg.example/app:1", layers: 3 });
  assert.deepEqual(lines.length, 1);
  assert.deepEqual(JSON.parse(lines[0]), {
    level: "info",
    msg: "pushing image",
    ref: "reg.example/app:1",
    layers: 3,
  });
  assert(!lines[0].includes("\n"));
});

Deno.test("json format: time only with timestamps; reserved field names are prefixed", () => {
  const lines = capture({ level: "info", format: "json", timestamp: true });
  log.warn("slow", { level: "x", msg: "y", err: new Error("boom") });
  assert.deepEqual(JSON.parse(lines[0]), {
    level: "warn",
    msg: "slow",
    time: "2026-01-02T03:04:05.678Z",
    "fields.level": "x",
    "fields.msg": "y",
    err: "boom",
  });
});

Deno.test("level filtering: default info drops debug and trace", () => {
  const lines = capture({ format: "json" });
  assert.deepEqual(logConfig().level, "info");
  log.trace("t");
  log.debug("d");
  log.info("i");
  log.error("e");
  assert.deepEqual(lines.map((line) => JSON.parse(line).level), ["info", "error"]);
  assert(!log.enabled("debug"));
  assert(log.enabled("warn"));
});

Deno.test("level filtering: trace enables everything, error keeps error and above", () => {
  let lines = capture({ level: "trace", format: "json" });
  log.trace("t");
  log.debug("d");
  assert.deepEqual(lines.length, 2);
  lines = capture({ level: "error", format: "json" });
  log.warn("w");
  log.error("e");
  log.log("fatal", "f");
  assert.deepEqual(lines.map((line) => JSON.parse(line).level), ["error", "fatal"]);
});

Deno.test("text format: logrus-style level tag, fields, no colour", () => {
  const lines = capture({ level: "info", format: "text", timestamp: false });
  log.info("Retrieving image manifest", { image: "alpine:3.19", note: "two words" });
  assert.match(
    lines[0],
    /^INFO\[\d{4}\] Retrieving image manifest image=alpine:3.19 note="two words"$/,
  );
  log.warn("careful");
  assert.match(lines[1], /^WARN\[\d{4}\] careful$/);
});

Deno.test("text format with timestamp prints the ISO time", () => {
  const lines = capture({ level: "info", format: "text", timestamp: true });
  log.error("failed");
  assert.deepEqual(lines[0], "ERRO[2026-01-02T03:04:05.678Z] failed");
});

Deno.test("color format adds ANSI colours only when enabled", () => {
  let lines = capture({ format: "color" }, true);
  log.info("hello");
  assert(lines[0].startsWith("\x1b[36mINFO\x1b[0m["));
  lines = capture({ format: "color" }, false);
  log.info("hello");
  assert(!lines[0].includes("\x1b["));
});

Deno.test("redact masks URL credentials, Authorization values and tokens", () => {
  assert.deepEqual(redact("https://user:pass@host/x"), "https://user:***@host/x");
  assert.deepEqual(redact("git://tok123@github.com/a.git"), "git://***@github.com/a.git");
  assert.deepEqual(redact("Authorization: Bearer abc.def.ghi"), "Authorization: Bearer ***");
  assert.deepEqual(
    redact('{"Authorization":"Basic dXNlcjpwYXNz"}'),
    '{"Authorization":"Basic ***"}',
  );
  assert.deepEqual(
    redact('{"auth":"dXNlcjpwYXNz","identitytoken":"xyz"}'),
    '{"auth":"***","identitytoken":"***"}',
  );
  assert.deepEqual(redact("password=s3cret token=abc"), "password=*** token=***");
  assert.deepEqual(
    redact("https://b.s3/x?X-Amz-Credential=AKIA&X-Amz-Signature=beef&part=1"),
    "https://b.s3/x?X-Amz-Credential=***&X-Amz-Signature=***&part=1",
  );
});

Deno.test("redact leaves ordinary text, image references and auth challenges alone", () => {
  for (
    const text of [
      "docker://alpine:3.19@sha256:abcd",
      "reg.example:5000/app@sha256:abcd",
      "authorization failed: denied",
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"',
      "fetching token: 401 Unauthorized",
    ]
  ) {
    assert.deepEqual(redact(text), text);
  }
});

Deno.test("the logger redacts messages and fields; addSecret masks registered values", () => {
  const lines = capture({ format: "json" });
  addSecret("hunter22");
  log.info("GET https://bob:pw@reg.example/v2/ failed", {
    header: "Authorization: Bearer abcdefghijkl",
    said: "my password is hunter22",
    nested: { url: "https://u:p@h" },
  });
  const line = lines[0];
  for (const secret of ["bob:pw", "abcdefghijkl", "hunter22", "u:p@"]) {
    assert(!line.includes(secret), `${secret} leaked: ${line}`);
  }
  assert.deepEqual(JSON.parse(line).nested.url, "https://u:***@h");
  const text = capture({ format: "text" });
  addSecret("hunter22");
  log.info("login hunter22", { url: "https://bob:pw@reg" });
  assert(!text[0].includes("hunter22") && !text[0].includes(":pw@"), text[0]);
});

Deno.test("warnOnce logs a key once", () => {
  const lines = capture({ format: "json" });
  log.warnOnce("reg.example:299", "registry says: deprecated");
  log.warnOnce("reg.example:299", "registry says: deprecated");
  log.warnOnce("other", "another warning");
  assert.deepEqual(lines.map((line) => JSON.parse(line).msg), [
    "registry says: deprecated",
    "another warning",
  ]);
});

Deno.test("parseLogLevel accepts logrus spellings", () => {
  assert.deepEqual(parseLogLevel("DEBUG"), "debug");
  assert.deepEqual(parseLogLevel("warning"), "warn");
  assert.deepEqual(parseLogLevel("panic"), "panic");
  assert.deepEqual(parseLogLevel("loud"), undefined);
});

Deno.test("a failing writer does not throw", () => {
  resetLog();
  configureLog({ format: "text" }, {
    write: () => {
      throw new Error("closed");
    },
  });
  log.error("still fine");
  resetLog();
});
