/**
 * The fault proxy's command line: `--target URL [--rules JSON] [--port N] [--ca FILE]
 * [--forward node|fetch]` (or `--help`). Prints `{"url":…,"port":…,"target":…}` and runs until
 * SIGINT/SIGTERM.
 * @module
 */
import { z } from "zod";
import { type CommandDef, parseFlags } from "../_flags.ts";
import { type FaultRule, FaultRuleSchema } from "./rules.ts";
import { startFaultProxy } from "./server.ts";

const COMMAND: CommandDef = {
  name: "fault_proxy",
  description: "fault-injecting reverse proxy for registry tests",
  flags: {
    target: {
      value: "url",
      help: "upstream base URL, e.g. http://127.0.0.1:5000",
      required: true,
    },
    rules: { value: "json", help: "JSON array of fault rules", default: "[]" },
    port: { value: "n", help: "port on 127.0.0.1 (0: any free port)", default: "0" },
    ca: { value: "file", help: "PEM CA certificate for an https upstream" },
    forward: { value: "how", help: "node or fetch", default: "node" },
  },
};

/**
 * Runs the fault proxy from the command line `args`. A bad command line exits 1, bad rules or
 * a bad `--forward` exit 2, each with one `error:` line.
 */
export async function main(args: string[]): Promise<void> {
  let opts: { target: string; rules: string; port: string; ca?: string; forward: string };
  try {
    const values = parseFlags(COMMAND, args);
    if (!values) return;
    opts = values as typeof opts;
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(1);
  }
  let rules: FaultRule[];
  try {
    rules = z.array(FaultRuleSchema).parse(JSON.parse(opts.rules)) as FaultRule[];
  } catch (e) {
    console.error(`error: bad --rules: ${(e as Error).message.replace(/\s+/g, " ")}`);
    Deno.exit(2);
  }
  if (opts.forward !== "node" && opts.forward !== "fetch") {
    console.error(`error: --forward must be node or fetch`);
    Deno.exit(2);
  }
  const proxy = await startFaultProxy(opts.target, rules, {
    port: Number(opts.port),
    caFile: opts.ca,
    forward: opts.forward,
  });
  console.log(JSON.stringify({ url: proxy.url, port: proxy.port, target: opts.target }));
  const stop = async () => {
    await proxy.stop();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}
