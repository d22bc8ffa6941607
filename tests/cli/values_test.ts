import assert from "node:assert/strict";
import { UsageError } from "../../lib/errors.ts";
import {
  parseBool,
  parseByteSize,
  parseChoice,
  parseDuration,
  parseInteger,
  parseKeyValue,
  parseKeyValueList,
  parsePlatform,
  parsePlatformList,
} from "../../lib/cli/values.ts";

function usageError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UsageError, `not a UsageError: ${err}`);
    assert.equal(err.exitCode, 2);
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes("\n"));
    return true;
  });
}

Deno.test("parseBool accepts Go's spellings and names the flag on error", () => {
  for (const word of ["true", "TRUE", "True", "t", "1"]) assert.equal(parseBool(word, "--x"), true);
  for (const word of ["false", "FALSE", "f", "0"]) assert.equal(parseBool(word, "--x"), false);
  usageError(
    () => parseBool("yes", "--cache"),
    /'yes' for --cache: expected --cache, --cache=true or --cache=false/,
  );
});

Deno.test("parseInteger takes whole numbers within bounds", () => {
  assert.equal(parseInteger("3", "--push-retry"), 3);
  assert.equal(parseInteger("-1", "--compression-level", { min: -1 }), -1);
  usageError(
    () => parseInteger("x", "--push-retry"),
    /'x' for --push-retry: expected a whole number/,
  );
  usageError(() => parseInteger("1.5", "--push-retry"), /--push-retry/);
  usageError(() => parseInteger("-1", "--push-retry"), /0 or more/);
  usageError(() => parseInteger("0", "--jobs", { min: 1 }), /1 or more/);
});

Deno.test("parseChoice is case-insensitive and lists the choices", () => {
  assert.equal(parseChoice("ZSTD", "--compression", { choices: ["gzip", "zstd"] }), "zstd");
  usageError(
    () => parseChoice("lz4", "--compression", { choices: ["gzip", "zstd"] }),
    /'lz4' for --compression: expected one of gzip, zstd/,
  );
});

Deno.test("parseKeyValue keeps '=' in the value", () => {
  assert.deepEqual(parseKeyValue("A=b=c", "--label"), ["A", "b=c"]);
  assert.deepEqual(parseKeyValue("A=", "--label"), ["A", ""]);
  usageError(
    () => parseKeyValue("A", "--label", { form: "KEY=VALUE" }),
    /'A' for --label: expected KEY=VALUE/,
  );
  usageError(() => parseKeyValue("=v", "--label"), /--label/);
});

Deno.test("parseKeyValueList splits commas and keeps commas inside values", () => {
  assert.deepEqual(parseKeyValueList("a=1,b=2", "--index-annotations"), [["a", "1"], ["b", "2"]]);
  assert.deepEqual(parseKeyValueList("desc=x, y,b=2", "--index-annotations"), [
    ["desc", "x, y"],
    ["b", "2"],
  ]);
  usageError(() => parseKeyValueList("nokey", "--index-annotations"), /--index-annotations/);
});

Deno.test("parsePlatform validates os/arch[/variant]", () => {
  assert.equal(parsePlatform("linux/arm/v7", "--platform"), "linux/arm/v7");
  assert.equal(parsePlatform("Linux/AMD64", "--platform"), "linux/amd64");
  usageError(
    () => parsePlatform("amd64", "--platform"),
    /'amd64' for --platform: expected os\/arch/,
  );
  assert.deepEqual(parsePlatformList("linux/amd64, linux/arm64", "--multi-platform"), [
    "linux/amd64",
    "linux/arm64",
  ]);
  usageError(() => parsePlatformList(",", "--multi-platform"), /--multi-platform/);
});

Deno.test("parseDuration reads Go durations into milliseconds", () => {
  assert.equal(parseDuration("336h", "--cache-ttl"), 336 * 3_600_000);
  assert.equal(parseDuration("1h30m", "--cache-ttl"), 5_400_000);
  assert.equal(parseDuration("1.5s", "--cache-ttl"), 1500);
  assert.equal(parseDuration("0", "--cache-ttl"), 0);
  usageError(() => parseDuration("2 weeks", "--cache-ttl"), /'2 weeks' for --cache-ttl/);
  usageError(() => parseDuration("10", "--cache-ttl"), /unit/);
});

Deno.test("parseByteSize reads bytes with optional units", () => {
  assert.equal(parseByteSize("0", "--upload-chunk-size"), 0);
  assert.equal(parseByteSize("5242880", "--upload-chunk-size"), 5 * 1024 * 1024);
  assert.equal(parseByteSize("5MiB", "--upload-chunk-size"), 5 * 1024 * 1024);
  assert.equal(parseByteSize("8mb", "--upload-chunk-size"), 8_000_000);
  usageError(() => parseByteSize("lots", "--upload-chunk-size"), /'lots' for --upload-chunk-size/);
});
