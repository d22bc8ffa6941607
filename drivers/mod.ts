/**
 * The drivers of multi-platform builds by name: `local` (this process), `ci` (aggregation of
 * per-platform digests) and `k8s` (one Job per platform), each loaded only when chosen.
 * @module
 */
import { KanikoError } from "../lib/errors.ts";
import type { Driver } from "./types.ts";

export type {
  ChildImage,
  Driver,
  DriverContext,
  MultiPlatformBuild,
  PlatformTarget,
} from "./types.ts";

/** The driver `name` (`--driver`), its module loaded on demand. */
export async function selectDriver(name: string): Promise<Driver> {
  switch (name) {
    case "local":
      return (await import("./local/mod.ts")).localDriver;
    case "ci":
      return (await import("./ci/mod.ts")).ciDriver;
    case "k8s": {
      // Not a literal specifier: the k8s driver's npm dependencies stay out of the CLI's static
      // module graph (tests/cli/no_cjs_test.ts) and load only when --driver=k8s is chosen.
      const path = "./k8s/mod.ts";
      return ((await import(path)) as { k8sDriver: Driver }).k8sDriver;
    }
  }
  throw new KanikoError(`unknown driver "${name}"`, {
    exitCode: 2,
    hint: "use --driver=local, --driver=k8s or --driver=ci",
  });
}
