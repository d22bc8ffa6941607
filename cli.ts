/**
 * The `kaniko` command line: `deno run -A cli.ts [COMMAND] [ARGS] [FLAGS]`. The build command is
 * the default, so an existing `/kaniko/executor --context … --destination …` line runs unchanged.
 * See `kaniko --help` and the contract in the project documentation.
 * @module
 */

import { installProcessHandlers, main } from "./lib/cli/main.ts";

if (import.meta.main) {
  installProcessHandlers();
  Deno.exit(await main(Deno.args));
}
