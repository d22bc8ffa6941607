/**
 * Process-level behaviour of lib/cli/main.ts, each case in its own `deno eval` child: signals,
 * unhandled rejections, and the build's exit code passed through.
 */
import assert from "node:assert/strict";
import { readUntil } from "../_helpers.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const MAIN = "./lib/cli/main.ts";
const ERRORS = "./lib/errors.ts";

function spawnEval(code: string): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function evalOutput(code: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await spawnEval(code).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

async function signalled(signal: Deno.Signal): Promise<{ code: number; stderr: string }> {
  const child = spawnEval(
    `import { installProcessHandlers } from "${MAIN}";
     installProcessHandlers();
     setTimeout(() => {}, 30_000);
     console.log("ready");`,
  );
  const stderr = new Response(child.stderr).text();
  try {
    await readUntil(child.stdout, "ready");
    child.kill(signal);
    const status = await child.status;
    return { code: status.code, stderr: await stderr };
  } catch (err) {
    child.kill("SIGKILL");
    await child.status;
    throw err;
  }
}

Deno.test("SIGINT ends the process with exit 130 and one line", async () => {
  const result = await signalled("SIGINT");
  assert.equal(result.code, 130);
  assert.equal(result.stderr, "error: interrupted by SIGINT\n");
});

Deno.test("SIGTERM ends the process with exit 143 and one line", async () => {
  const result = await signalled("SIGTERM");
  assert.equal(result.code, 143);
  assert.equal(result.stderr, "error: interrupted by SIGTERM\n");
});

Deno.test("an unhandled rejection prints one error line and uses the error's exit code", async () => {
  const result = await evalOutput(
    `import { installProcessHandlers } from "${MAIN}";
     import { KanikoError } from "${ERRORS}";
     installProcessHandlers();
     Promise.reject(new KanikoError("pushing reg.example/app: denied", { exitCode: 3 }));
     setTimeout(() => {}, 5_000);`,
  );
  assert.equal(result.code, 3);
  assert.equal(result.stderr, "error: pushing reg.example/app: denied\n");
});

Deno.test("an uncaught error prints one error line, exit 1, credentials masked", async () => {
  const result = await evalOutput(
    `import { installProcessHandlers } from "${MAIN}";
     installProcessHandlers();
     setTimeout(() => { throw new Error("GET https://bob:hunter2@reg.example/v2/ failed"); }, 0);
     setTimeout(() => {}, 5_000);`,
  );
  assert.equal(result.code, 1);
  assert.equal(result.stderr, "error: GET https://bob:***@reg.example/v2/ failed\n");
});

Deno.test("main passes the build's exit code through and gives it the options", async () => {
  const result = await evalOutput(
    `import { main } from "${MAIN}";
     const code = await main(["-d", "reg.example/a:1", "--build-arg=A=1"], {
       env: () => undefined,
       handlers: { build: async (opts) => { console.log(JSON.stringify(opts.buildArgs)); return 42; } },
     });
     Deno.exit(code);`,
  );
  assert.equal(result.code, 42);
  assert.equal(result.stdout, '["A=1"]\n');
  assert.equal(result.stderr, "");
});

Deno.test("main reports a failing command as one line with the error's exit code", async () => {
  const result = await evalOutput(
    `import { main } from "${MAIN}";
     import { KanikoError } from "${ERRORS}";
     const fail = async () => { throw new KanikoError("MANIFEST_UNKNOWN: reg.example/a:1", { hint: "check the tag" }); };
     Deno.exit(await main(["digest", "reg.example/a:1"], { handlers: { digest: fail } }));`,
  );
  assert.equal(result.code, 1);
  assert.equal(result.stdout, "");
  assert.equal(result.stderr, "error: MANIFEST_UNKNOWN: reg.example/a:1; check the tag\n");
});
