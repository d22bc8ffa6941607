/**
 * Build arguments as BuildKit treats them: `--build-arg` values (`K=V`, or a bare `K` taken from
 * the environment and dropped when unset), the automatic platform arguments (`TARGETPLATFORM`,
 * `BUILDARCH`, …, `TARGETSTAGE`) that a `--build-arg` may override, the predefined proxy
 * arguments (usable by RUN without an ARG, never persisted), and the "not consumed" warning.
 * @module
 */
import type { Instruction } from "./ast.ts";
import { UsageError } from "../errors.ts";
import {
  type ArgDeclaration,
  argDeclarations,
  type ExpandContext,
  expandWord,
  located,
  locatedError,
} from "./expand.ts";
import { formatPlatform } from "../oci/platform.ts";
import type { Platform } from "../oci/schemas.ts";

/** The predefined proxy arguments (BuildKit compares them case-insensitively). */
export const PROXY_ARGS: readonly string[] = [
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "FTP_PROXY",
  "NO_PROXY",
  "ALL_PROXY",
];

/** The automatic platform arguments, in BuildKit's order. */
export const PLATFORM_ARGS: readonly string[] = [
  "BUILDPLATFORM",
  "BUILDOS",
  "BUILDOSVERSION",
  "BUILDARCH",
  "BUILDVARIANT",
  "TARGETPLATFORM",
  "TARGETOS",
  "TARGETOSVERSION",
  "TARGETARCH",
  "TARGETVARIANT",
  "TARGETSTAGE",
];

/** True for `HTTP_PROXY`, `https_proxy`, … (any case, as BuildKit's `strings.EqualFold`). */
export function isProxyArg(name: string): boolean {
  return PROXY_ARGS.includes(name.toUpperCase());
}

/**
 * True for build arguments that never cause a "not consumed" warning: the proxy arguments and
 * BuildKit's own switches (`BUILDKIT_*`, `SOURCE_DATE_EPOCH`).
 */
export function isBuiltinArg(name: string): boolean {
  return isProxyArg(name) || name.startsWith("BUILDKIT_") || name === "SOURCE_DATE_EPOCH";
}

/** Reads one environment variable; `undefined` when unset. */
export type EnvReader = (name: string) => string | undefined;

/** Reads the process environment (undefined when permission is missing). */
export function processEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/**
 * Turns `--build-arg` values into a map, in order (a later value for the same name wins).
 * `K=V` sets K to V (V may be empty); a bare `K` takes K from `env` and is dropped when K is
 * unset, as BuildKit (through the docker CLI) does. Throws a {@link UsageError} for an empty name.
 */
export function resolveBuildArgs(
  list: readonly string[],
  env: EnvReader = processEnv,
): Map<string, string> {
  const out = new Map<string, string>();
  for (const item of list) {
    const eq = item.indexOf("=");
    const name = eq < 0 ? item : item.slice(0, eq);
    if (name === "") {
      throw new UsageError(`invalid --build-arg "${item}": the name is empty`, {
        hint: "use --build-arg NAME=VALUE, or --build-arg NAME to take NAME from the environment",
      });
    }
    if (eq >= 0) {
      out.set(name, item.slice(eq + 1));
      continue;
    }
    const value = env(name);
    if (value === undefined) out.delete(name);
    else out.set(name, value);
  }
  return out;
}

/**
 * The automatic platform arguments (BuildKit's defaults): `BUILD*` from `build`, `TARGET*` from
 * `target`, `TARGETSTAGE` the target stage's name (`default` for an unnamed last stage). A
 * `--build-arg` of the same name overrides each.
 */
export function platformArgs(
  target: Platform,
  build: Platform,
  targetStage: string,
  overrides: ReadonlyMap<string, string> = new Map(),
): Map<string, string> {
  const values: [string, string][] = [
    ["BUILDPLATFORM", formatPlatform(build)],
    ["BUILDOS", build.os],
    ["BUILDOSVERSION", build["os.version"] ?? ""],
    ["BUILDARCH", build.architecture],
    ["BUILDVARIANT", build.variant ?? ""],
    ["TARGETPLATFORM", formatPlatform(target)],
    ["TARGETOS", target.os],
    ["TARGETOSVERSION", target["os.version"] ?? ""],
    ["TARGETARCH", target.architecture],
    ["TARGETVARIANT", target.variant ?? ""],
    ["TARGETSTAGE", targetStage || "default"],
  ];
  return new Map(values.map(([k, v]) => [k, overrides.get(k) ?? v]));
}

/**
 * The proxy settings RUN steps receive without an ARG: the `--build-arg`s whose names are proxy
 * names (any case), keyed by the name as given. They are never written to the image config.
 */
export function proxyEnv(buildArgs: ReadonlyMap<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const key of [...buildArgs.keys()].sort()) {
    if (isProxyArg(key)) out.set(key, buildArgs.get(key)!);
  }
  return out;
}

/**
 * One warning line per `--build-arg` that nothing consumes (`consumed` holds the names read by
 * an ARG in a built stage or by the FROM line of a built stage), proxies and `BUILDKIT_*` aside.
 */
export function unusedBuildArgWarnings(
  buildArgs: ReadonlyMap<string, string>,
  consumed: ReadonlySet<string>,
): string[] {
  return [...buildArgs.keys()]
    .filter((name) => !consumed.has(name) && !isBuiltinArg(name))
    .sort()
    .map((name) =>
      `--build-arg ${name} was not consumed: no ARG ${name} in the stages built, ` +
      `and no FROM line of them reads it`
    );
}

/** The scopes ARG instructions read and write. */
export interface ArgScopes {
  /** The `--build-arg` values. */
  buildArgs: ReadonlyMap<string, string>;
  /** The global scope: automatic platform arguments, then the global ARGs. */
  global: Map<string, string>;
  /** For each global ARG, the global ARGs its default read (`ARG B=$A` reads A). */
  metaDeps: Map<string, Set<string>>;
}

/** A global ARG and its value after the build args and earlier globals (null: no value). */
export interface MetaArg {
  name: string;
  value: string | null;
}

/**
 * The global ARGs (before the first FROM), in order, as BuildKit's `buildMetaArgs`: a
 * `--build-arg` wins, else the default expanded with the global scope so far. Each value joins
 * the global scope, where FROM lines and `ARG NAME` (without value) in stages read it.
 */
export function resolveMetaArgs(
  ctx: ExpandContext,
  instructions: readonly Instruction[],
  scopes: ArgScopes,
): MetaArg[] {
  const out: MetaArg[] = [];
  for (const inst of instructions) {
    for (const decl of declarations(ctx, inst)) {
      let value = scopes.buildArgs.get(decl.key);
      if (value === undefined && decl.value !== undefined) {
        const word = decl.value;
        const result = located(ctx, inst, () => ctx.lex.processWordWithUsage(word, scopes.global));
        value = result.value;
        const deps = new Set([...result.used].filter((n) => scopes.global.has(n)));
        if (deps.delete(decl.key)) scopes.metaDeps.get(decl.key)?.forEach((d) => deps.add(d));
        scopes.metaDeps.set(decl.key, deps);
      }
      if (value !== undefined) scopes.global.set(decl.key, value);
      out.push({ name: decl.key, value: scopes.global.get(decl.key) ?? null });
    }
  }
  return out;
}

/** The declarations of an ARG instruction; an ARG without a name is an error. */
export function declarations(ctx: ExpandContext, inst: Instruction): ArgDeclaration[] {
  const decls = argDeclarations(inst);
  if (decls.length === 0) {
    throw locatedError(ctx.file, inst, "ARG requires at least one argument", {
      hint: "use ARG NAME[=VALUE]",
    });
  }
  if (decls.some((d) => d.key === "")) {
    throw locatedError(ctx.file, inst, "ARG names can not be blank", {
      hint: "use ARG NAME[=VALUE]",
    });
  }
  return decls;
}

/** Build args BuildKit reads but never puts in the environment. */
const NON_ENV_ARGS = new Set(["BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"]);

/**
 * ARG in a stage, as BuildKit's `dispatchArg`: a `--build-arg` wins; else the default, expanded
 * with the stage's variables `env`; else (no default) the global value (a global ARG or an
 * automatic platform argument). A value, when there is one, becomes a variable in `env`.
 * Returns each name with its value (undefined: declared without value) and records the names
 * in `declared`.
 */
export function declareArgs(
  ctx: ExpandContext,
  inst: Instruction,
  scopes: ArgScopes,
  env: Map<string, string>,
  declared: string[],
): [string, string | undefined][] {
  const resolved: [string, string | undefined][] = [];
  for (const decl of declarations(ctx, inst)) {
    let value = scopes.buildArgs.get(decl.key);
    if (value === undefined && decl.value !== undefined) {
      value = expandWord(ctx, inst, decl.value, env);
    } else if (value === undefined) {
      value = scopes.global.get(decl.key);
    }
    if (value !== undefined && !NON_ENV_ARGS.has(decl.key)) env.set(decl.key, value);
    if (!declared.includes(decl.key)) declared.push(decl.key);
    resolved.push([decl.key, value]);
  }
  return resolved;
}

/**
 * The build args consumed by the stages built: the ARGs they declare, the global ARGs their
 * FROM lines read, and the global ARGs those depend on.
 */
export function consumedArgs(
  stages: readonly { declaredArgs: readonly string[]; usedMetaArgs: readonly string[] }[],
  metaDeps: ReadonlyMap<string, ReadonlySet<string>>,
): Set<string> {
  const consumed = new Set<string>();
  const add = (name: string) => {
    if (consumed.has(name)) return;
    consumed.add(name);
    metaDeps.get(name)?.forEach(add);
  };
  for (const stage of stages) {
    stage.declaredArgs.forEach(add);
    stage.usedMetaArgs.forEach(add);
  }
  return consumed;
}
