/**
 * The CLI's module graph holds no CommonJS, and only Node built-ins known not to cost memory.
 *
 * Why: once a Deno (2.9) process has loaded any CommonJS module — an npm package such as
 * commander, or even a local `module.exports = {}` file — streamed registry uploads in that
 * process use about 30-40 MB more memory for the rest of its life (copying a 277 MiB blob: peak
 * RSS about 150 MB instead of about 120 MB; the target is < 150 MB). Importing `node:util`,
 * `node:process`, `node:events`, `node:fs` or `node:assert` has the same effect, so the CLI
 * parses its flags itself (lib/cli/argv.ts), with neither commander nor `node:util`'s
 * `parseArgs`. Every npm package the CLI reaches must be an ES module package from the list
 * below, and every `node:` module one from the measured list below.
 *
 * `deno info --json cli.ts` lists the static imports and the literal dynamic imports of the
 * command modules (`import("../commands/copy.ts")`), so the commands are covered too.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;
/** The npm packages the CLI may reach: ES module packages (`"type": "module"`, `import` export). */
const ALLOWED_NPM = new Set(["zod", "hono"]);
/**
 * The `node:` built-ins measured not to raise upload memory (peak RSS of a CLI copy of the
 * 277 MiB bench layout stays about 120 MB with all of them loaded). Measure before adding one.
 */
const ALLOWED_NODE = new Set([
  "node:crypto",
  "node:http",
  "node:https",
  "node:path",
  "node:stream",
  "node:stream/web",
  "node:tls",
]);

interface GraphModule {
  specifier: string;
  kind?: string;
  mediaType?: string;
  npmPackage?: string;
}

interface Graph {
  modules: GraphModule[];
  npmPackages: Record<string, { name: string; localPath?: string }>;
}

async function moduleGraph(): Promise<Graph> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "cli.ts"],
    cwd: ROOT,
    stdin: "null",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

Deno.test("cli.ts loads no CommonJS module (it costs ~40 MB RSS on uploads)", async () => {
  const graph = await moduleGraph();
  assert.ok(graph.modules.some((m) => m.specifier.endsWith("/lib/cli/main.ts")));
  for (const module of graph.modules) {
    assert.ok(!/\.c[jt]s$/.test(module.specifier), `CommonJS file: ${module.specifier}`);
    assert.ok(
      module.mediaType !== "Cjs" && module.mediaType !== "Cts",
      `CommonJS module: ${module.specifier}`,
    );
    assert.ok(!/^npm:\/?commander\b/.test(module.specifier), "commander is back in the CLI");
  }
  const ids = new Set(graph.modules.flatMap((m) => m.kind === "npm" ? [m.npmPackage!] : []));
  for (const id of ids) {
    const pkg = graph.npmPackages[id];
    assert.ok(ALLOWED_NPM.has(pkg.name), `npm package ${id} is not on the ESM allow-list`);
    if (!pkg.localPath) continue;
    const manifest = JSON.parse(await Deno.readTextFile(`${pkg.localPath}/package.json`));
    assert.equal(manifest.type, "module", `${id} is not an ES module package`);
    const entry = manifest.exports?.["."]?.import ?? manifest.module;
    assert.match(String(entry), /\.m?js$/, `${id} has no ES module entry point`);
  }
});

Deno.test("cli.ts loads only the node: built-ins measured not to cost upload memory", async () => {
  const graph = await moduleGraph();
  const builtins = graph.modules.filter((m) => m.kind === "node").map((m) => m.specifier);
  assert.ok(builtins.length > 0);
  for (const specifier of builtins) {
    assert.ok(ALLOWED_NODE.has(specifier), `${specifier} is not on the measured allow-list`);
  }
});
