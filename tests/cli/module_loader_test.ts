import assert from "node:assert/strict";
import { KanikoError } from "../../lib/errors.ts";
import {
  isMissingCommandModule,
  loadCommandModule,
  requireExport,
} from "../../lib/cli/module_loader.ts";

const commandsUrl = (name: string) => new URL(`../../lib/commands/${name}.ts`, import.meta.url);

Deno.test("a missing command module becomes 'not available yet' (exit 1)", async () => {
  const missing = new TypeError(`Module not found "${commandsUrl("build").href}".`);
  await assert.rejects(
    loadCommandModule("build", () => Promise.reject(missing)),
    (err: unknown) => {
      assert.ok(err instanceof KanikoError);
      assert.equal(err.message, "the build command is not available yet in this version");
      assert.equal(err.exitCode, 1);
      assert.equal(err.cause, missing);
      return true;
    },
  );
});

Deno.test("Deno's real module-not-found error is recognised", async () => {
  const name = "no_such_command_for_tests";
  const specifier = commandsUrl(name).href;
  await assert.rejects(
    loadCommandModule(name, () => import(specifier)),
    /the no_such_command_for_tests command is not available yet in this version/,
  );
});

Deno.test("a module that fails to import something else is not reported as missing", async () => {
  const nested = new TypeError(
    `Module not found "file:///elsewhere/dep.ts".\n    at ${commandsUrl("build").href}:1:8`,
  );
  assert.equal(isMissingCommandModule(nested, "build"), false);
  await assert.rejects(
    loadCommandModule("build", () => Promise.reject(nested)),
    (err) => err === nested,
  );
  const boom = new Error("boom");
  await assert.rejects(
    loadCommandModule("build", () => Promise.reject(boom)),
    (err) => err === boom,
  );
});

Deno.test("a loaded module is returned; a missing export is named", async () => {
  const mod = await loadCommandModule("copy", () => Promise.resolve({ copyCommand: () => 1 }));
  assert.equal(requireExport(mod.copyCommand, "copy", "copyCommand")(), 1);
  assert.throws(
    () => requireExport(undefined, "copy", "copyCommand"),
    /lib\/commands\/copy.ts does not export a function copyCommand/,
  );
});
