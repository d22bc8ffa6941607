/**
 * The fault proxy (see `scripts/fault_proxy/mod.ts`): re-exports its API, and runs it from the
 * command line: `deno run -A scripts/fault_proxy.ts --target URL [--rules JSON] [--port N]
 * [--ca FILE] [--forward node|fetch]` (`--help` lists the options).
 * @module
 */
export * from "./fault_proxy/mod.ts";

if (import.meta.main) {
  // Loaded only when run: the command line's parser brings `node:util` (see scripts/_flags.ts).
  const { main } = await import("./fault_proxy/cli.ts");
  await main(Deno.args);
}
