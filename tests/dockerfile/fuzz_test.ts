/**
 * Fuzzing the parser: random bytes, random token soup, every truncation of the BuildKit corpus,
 * 1 MB lines, deeply nested continuations and thousands of here-documents. The parser (and the
 * argument rules and the BuildKit dump after it) may only ever throw a KanikoError, and every
 * input must be handled in well under 2 seconds. Through the CLI, bad input gives exactly one
 * `error:` line. Seeded: `FUZZ_SEED=n` and `FUZZ_ITERATIONS=n` repeat or extend a run.
 */
import assert from "node:assert/strict";
import { dumpDockerfile } from "../../lib/dockerfile/dump.ts";
import { validateDockerfile } from "../../lib/dockerfile/instruction_args.ts";
import { parseDockerfile } from "../../lib/dockerfile/parser.ts";
import { KanikoError } from "../../lib/errors.ts";

const SEED = Number(Deno.env.get("FUZZ_SEED") ?? 20240611);
const ITERATIONS = Number(Deno.env.get("FUZZ_ITERATIONS") ?? 1500);
/**
 * A hang or a quadratic blow-up on these inputs takes minutes; linear parsing takes well under a
 * second. The margin keeps a loaded 2-core CI machine from failing a correct parser.
 */
const TIME_LIMIT_MS = 10_000;

/** mulberry32: small, fast, seeded. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Parses (and validates and dumps) `text`: only KanikoErrors, within the time limit. */
function survive(text: string, label: string): "ok" | "error" {
  const start = performance.now();
  let outcome: "ok" | "error" = "ok";
  try {
    const df = parseDockerfile(text);
    dumpDockerfile(df);
    JSON.stringify(df, null, 2);
    validateDockerfile(df);
  } catch (err) {
    if (!(err instanceof KanikoError)) {
      assert.fail(`${label}: threw ${err} for ${JSON.stringify(text.slice(0, 300))}`);
    }
    assert.ok(!err.message.includes("\n"), `${label}: multi-line message ${err.message}`);
    assert.match(err.message, /^Dockerfile(:\d+)?: /, label);
    outcome = "error";
  }
  const ms = performance.now() - start;
  assert.ok(ms < TIME_LIMIT_MS, `${label}: took ${ms.toFixed(0)} ms`);
  return outcome;
}

// deno-fmt-ignore
const TOKENS = [
  "FROM ", "RUN ", "COPY ", "ADD ", "ENV ", "ARG ", "LABEL ", "CMD ", "ENTRYPOINT ", "ONBUILD ",
  "HEALTHCHECK ", "SHELL ", "EXPOSE ", "VOLUME ", "USER ", "WORKDIR ", "STOPSIGNAL ", "MAINTAINER ",
  "run ", "x", "a=b", "k v", "=", " ", "  ", "\t", "\n", "\r\n", "\\", "\\\n", "`", "`\n", "#",
  "# escape=`\n", "# escape=\\\n", "# syntax=x\n", "--", "--from=a ", "--mount=type=cache,target=/c ",
  "--link ", "[", "]", '"', "'", ",", '["a", "b"]', "[1]", "<<", "<<EOF", "<<-EOF", "<<'EOF'",
  "\nEOF\n", "\n\tEOF\n", "$", "${", "}", "${A:-b c}", "\u00a0", "\u2028", "\uFEFF", "é", "😀",
  "\ud800", "\0", "NONE", "CMD", "AS", "\\u0041", "\n\n", "--=", "---",
];

Deno.test("fuzz: random bytes", () => {
  const next = rng(SEED);
  const decoder = new TextDecoder();
  const outcomes = { ok: 0, error: 0 };
  for (let i = 0; i < ITERATIONS; i++) {
    const bytes = new Uint8Array(Math.floor(next() * 400));
    for (let j = 0; j < bytes.length; j++) {
      // Mostly printable ASCII with newlines, some of anything.
      const r = next();
      bytes[j] = r < 0.1
        ? 0x0a
        : r < 0.8
        ? 0x20 + Math.floor(next() * 95)
        : Math.floor(next() * 256);
    }
    outcomes[survive(decoder.decode(bytes), `bytes #${i}`)]++;
  }
  assert.ok(outcomes.error > 0);
});

Deno.test("fuzz: token soup", () => {
  const next = rng(SEED + 1);
  const outcomes = { ok: 0, error: 0 };
  for (let i = 0; i < ITERATIONS * 2; i++) {
    let text = "";
    const n = 1 + Math.floor(next() * 60);
    for (let j = 0; j < n; j++) text += TOKENS[Math.floor(next() * TOKENS.length)];
    outcomes[survive(text, `soup #${i}`)]++;
  }
  assert.ok(outcomes.ok > 0 && outcomes.error > 0, JSON.stringify(outcomes));
});

Deno.test("fuzz: every truncation of the BuildKit corpus", () => {
  const base = new URL("./testdata/buildkit/testfiles/", import.meta.url);
  let count = 0;
  for (const entry of Deno.readDirSync(base)) {
    const text = Deno.readTextFileSync(new URL(`${entry.name}/Dockerfile`, base));
    const step = Math.max(1, Math.floor(text.length / 150));
    for (let cut = 0; cut <= text.length; cut += step) {
      survive(text.slice(0, cut), `${entry.name}[:${cut}]`);
      survive(text.slice(cut), `${entry.name}[${cut}:]`);
      count += 2;
    }
  }
  assert.ok(count > 1000, `${count}`);
});

Deno.test("fuzz: mutations of real Dockerfiles", () => {
  const next = rng(SEED + 2);
  const base = new URL("./testdata/buildkit/testfiles/", import.meta.url);
  const texts = [...Deno.readDirSync(base)].map((e) =>
    Deno.readTextFileSync(new URL(`${e.name}/Dockerfile`, base))
  );
  for (let i = 0; i < ITERATIONS; i++) {
    let text = texts[Math.floor(next() * texts.length)];
    for (let m = 0; m < 5; m++) {
      const at = Math.floor(next() * (text.length + 1));
      const token = TOKENS[Math.floor(next() * TOKENS.length)];
      text = next() < 0.7
        ? text.slice(0, at) + token + text.slice(at)
        : text.slice(0, at) + text.slice(at + Math.floor(next() * 20));
    }
    survive(text, `mutation #${i}`);
  }
});

Deno.test("fuzz: 1 MB lines fail fast with one error", () => {
  const mb = 1 << 20;
  const cases = [
    `RUN ${"a".repeat(mb)}\n`,
    `FROM a\nLABEL x=${"y".repeat(mb)}`,
    `CMD [${'"a",'.repeat(mb / 4)}"b"]\n`,
    `# ${"c".repeat(mb)}\nFROM a\n`,
    `FROM a\nRUN <<EOF\n${"d".repeat(mb)}\nEOF\n`,
    "é".repeat(mb),
    "\\".repeat(mb),
    `ENV ${'"'.repeat(mb)}`,
  ];
  for (const [i, text] of cases.entries()) {
    assert.equal(survive(text, `1MB #${i}`), "error");
  }
});

Deno.test("fuzz: long inputs of legal lines stay linear", () => {
  const cases: [string, string][] = [
    ["100k continuation lines", `FROM a\nRUN a \\\n${"  b \\\n".repeat(100000)}  c\n`],
    ["100k comment lines inside a continuation", `RUN a \\\n${"# c\n".repeat(100000)}b\n`],
    ["100k empty continuation lines", `RUN a \\\n${"\n".repeat(100000)}b\n`],
    ["100k lines of only the escape", `RUN a \\\n${"\\\n".repeat(100000)}`],
    ["50k instructions", "FROM a\n" + "RUN x\n".repeat(50000)],
    [
      "10k heredocs on one line",
      `COPY ${Array.from({ length: 6000 }, (_, i) => `<<H${i}`).join(" ")} /d\n` +
      Array.from({ length: 6000 }, (_, i) => `body ${i}\nH${i}\n`).join(""),
    ],
    ["a 60 kB word of quotes", `ENV a=${"\"'".repeat(30000)}\n`],
    ["a 60 kB flag", `COPY --chown=${"x".repeat(60000)} a b\n`],
    ["30k flags", `COPY ${"--a ".repeat(15000)}x y\n`],
    ["a 60 kB JSON array", `CMD [${'"a",'.repeat(15000)}"b"]\n`],
    ["deeply nested JSON", `CMD ${"[".repeat(60000)}\n`],
    ["a 60 kB directive", `# syntax=${" ".repeat(60000)}x\nFROM a\n`],
    ["60 kB of <<", `RUN ${"<<".repeat(30000)}\n`],
    ["deep ONBUILD nesting", `${"ONBUILD ".repeat(7000)}RUN x\n`],
    ["a 60 kB duration", `HEALTHCHECK --interval=${"1s".repeat(30000)} CMD x\n`],
    ["a 60 kB mount", `RUN --mount=${"type=cache,".repeat(5000)}target=/x y\n`],
  ];
  for (const [label, text] of cases) survive(text, label);
});

Deno.test("fuzz: bad input through the CLI gives exactly one error line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kaniko-fuzz-" });
  const next = rng(SEED + 3);
  try {
    const inputs = [
      "",
      "# escape=x\nFROM a\n",
      "FROM a\nRUN <<EOF\nnever closed\n",
      'CMD ["a", ["b"]]\n',
      "ENV PATH\n",
      `RUN ${"a".repeat(70000)}\n`,
      String.fromCharCode(...Array.from({ length: 300 }, () => Math.floor(next() * 128))) +
      "\nENV x",
    ];
    for (const [i, input] of inputs.entries()) {
      const path = `${dir}/Dockerfile.${i}`;
      await Deno.writeTextFile(path, input);
      const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("../../cli.ts", import.meta.url).pathname,
          "parse",
          "--raw",
          "-f",
          path,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(stderr);
      assert.equal(code, 1, `input ${i}: ${err}`);
      assert.equal(new TextDecoder().decode(stdout), "");
      assert.match(err, /^error: [^\n]*\n$/, `input ${i}`);
      assert.ok(err.includes(`${path}:`), err);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
