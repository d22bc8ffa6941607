/**
 * The Dockerfile front end: the parser and its syntax tree, the per-instruction rules,
 * shell-word expansion, build arguments, stages and the build plan (`parse`, `--dry-run`).
 *
 * ```ts
 * import { describeBuild, parseDockerfile } from "./mod.ts";
 * const df = parseDockerfile("ARG V=1.36\nFROM busybox:$V\n", { file: "Dockerfile" });
 * describeBuild(df, { buildArgs: ["V=1.37"], file: "Dockerfile" }).stages[0].base; // busybox:1.37
 * ```
 * @module
 */
export * from "./ast.ts";
export * from "./parser.ts";
export * from "./parse_error.ts";
export * from "./directives.ts";
export * from "./line_parsers.ts";
export * from "./heredoc.ts";
export * from "./words.ts";
export * from "./flags.ts";
export * from "./run_flags.ts";
export * from "./value_rules.ts";
export * from "./instruction_args.ts";
export * from "./dump.ts";
export * from "./shell_lex.ts";
export * from "./shell_pattern.ts";
export * from "./expand.ts";
export * from "./build_args.ts";
export * from "./stages.ts";
export * from "./stage_graph.ts";
export * from "./onbuild.ts";
export * from "./dispatch_checks.ts";
export * from "./plan.ts";
