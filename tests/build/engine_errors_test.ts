/**
 * Failing builds through `cli.ts`: a failing RUN's exit code is the process's exit code (128+N
 * for a signal), the error is one `error: Dockerfile:LINE: …` line, nothing is pushed to any
 * destination (no tag appears), and the build leaves nothing in the temp directory. A missing
 * COPY source and an unknown base image fail with exit 1 and one line naming what is wrong.
 */
import assert from "node:assert/strict";
import {
  build,
  type CliResult,
  destination,
  engine,
  noEngine,
  tagExists,
  tempDir,
  writeContext,
} from "./_engine.ts";

const opts = { ignore: noEngine, sanitizeResources: false, sanitizeOps: false };

/** The lines of stderr that are not progress, step output or warnings. */
function errorLines(r: CliResult): string[] {
  return r.stderr.split("\n").filter((l) => l.startsWith("error:"));
}

Deno.test(
  "a failing RUN: its exit code, one error line with Dockerfile:LINE, no tag anywhere, no leftovers",
  opts,
  async () => {
    const e = await engine();
    await using tmp = await tempDir("kaniko-engine-tmpdir-");
    await using ctx = await writeContext({
      Dockerfile:
        `FROM ${e.base}\nRUN touch /x\nRUN echo about to fail; exit 7\nRUN touch /never\n`,
    });
    const dests = [destination(e, "fail"), destination(e, "fail", "token")];
    const b = await build(e, ctx.path, { destinations: dests, env: { TMPDIR: tmp.path } });
    assert.equal(b.code, 7, b.stderr);
    assert.deepEqual(errorLines(b), [
      "error: Dockerfile:3: RUN echo about to fail; exit 7: the command returned a non-zero code: 7",
    ]);
    assert.match(b.stderr, /^about to fail$/m, "the step's output is shown");
    assert.doesNotMatch(b.stderr, /\n\s+at /, "no stack trace");
    assert.doesNotMatch(b.stderr, /STEP 3\/3/, "a later step ran");
    assert.ok(!(await tagExists(e, dests[0])), "pushed to the plain registry");
    assert.ok(!(await tagExists(e, dests[1], "token")), "pushed to the token registry");
    const left = [...Deno.readDirSync(tmp.path)].map((d) => d.name);
    assert.deepEqual(left, [], "the build left files in TMPDIR");
  },
);

Deno.test("a RUN killed by a signal exits 128+N", opts, async () => {
  const e = await engine();
  await using ctx = await writeContext({ Dockerfile: `FROM ${e.base}\nRUN kill -9 $$\n` });
  const b = await build(e, ctx.path);
  assert.equal(b.code, 137, b.stderr);
  assert.match(errorLines(b)[0], /^error: Dockerfile:2: RUN kill -9 \$\$: .*137$/);
  assert.ok(!(await tagExists(e, b.destination)));
});

Deno.test(
  "a missing COPY source and an unknown base image: exit 1, one line naming the cause",
  opts,
  async () => {
    const e = await engine();
    await using ctx = await writeContext({
      Dockerfile: `FROM ${e.base}\nRUN true\nCOPY missing.txt /\n`,
      "other/Dockerfile": `FROM ${e.host}/library/does-not-exist:latest\nRUN true\n`,
    });
    const [copy, base] = await Promise.all([
      build(e, ctx.path),
      build(e, ctx.path, { args: ["--dockerfile", `${ctx.path}/other/Dockerfile`] }),
    ]);
    assert.equal(copy.code, 1, copy.stderr);
    assert.equal(errorLines(copy).length, 1, copy.stderr);
    assert.match(errorLines(copy)[0], /^error: Dockerfile:3: COPY: .*missing\.txt.*not found/);
    assert.equal(base.code, 1, base.stderr);
    assert.equal(errorLines(base).length, 1, base.stderr);
    assert.match(errorLines(base)[0], /library\/does-not-exist:latest/);
    assert.ok(!(await tagExists(e, copy.destination)));
    assert.ok(!(await tagExists(e, base.destination)));
  },
);
