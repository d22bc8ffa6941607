/**
 * The CLI's module graph holds no CommonJS.
 *
 * Why: a CommonJS package (commander) costs start-up time (`kaniko version`: 0.12 s / 48 MB with
 * commander, 0.07 s / 35 MB with our parser), and without `--v8-flags=--max-semi-space-size=2`
 * a process that has loaded CommonJS (or node:util, node:fs, …) keeps ~30 MB more during
 * streamed uploads. With that flag (how `deno task kaniko` runs) the peak is ~95 MB either way,
 * so the node: built-ins are not restricted; CommonJS still is. Every npm package the CLI
 * reaches must be an ES module package from the list below.
 *
 * `deno info --json cli.ts` lists the static imports and the literal dynamic imports of the
 * command modules (`import("../commands/copy.ts")`), so the commands are covered too.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;
/** The npm packages the CLI may reach: ES module packages (`"type": "module"`, `import` export). */
const ALLOWED_NPM = new Set(["zod", "hono"]);
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

Deno.test("cli.ts loads no CommonJS module", async () => {
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
