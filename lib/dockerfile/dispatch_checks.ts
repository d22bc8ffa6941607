/**
 * The checks BuildKit makes only when it runs (dispatches) an instruction, on the values after
 * variable expansion: EXPOSE ports (`dockerfile2llb/convert_expose.go`), STOPSIGNAL
 * (`dispatchStopSignal`), empty VOLUME paths (`dispatchVolume`), COPY/ADD `--chmod`, ADD
 * `--checksum`, the sources COPY cannot read (`dispatchCopy` in `convert_copy.go`) and RUN
 * `--mount` fields (`commands_runmount.go`, whose parse-time pass checks only `from`).
 * `validateInstruction` already checks what is written literally; these catch what variables
 * produce — and, like BuildKit, they only apply to the stages a build runs.
 * @module
 */
import type { Instruction } from "./ast.ts";
import { type ExpandedInstruction, parseFlag } from "./expand.ts";
import { parseHeredocWord } from "./heredoc.ts";
import { parseRunMount, RunFlagError } from "./run_flags.ts";
import { checkChmod, checkPortSpec, checkSignal } from "./value_rules.ts";

/** The reason `inst`, expanded to `result`, would fail when BuildKit runs it; null when fine. */
export function dispatchProblem(inst: Instruction, result: ExpandedInstruction): string | null {
  switch (inst.keyword) {
    case "EXPOSE":
      for (const port of result.expanded) {
        const problem = checkPortSpec(port);
        if (problem) return problem;
      }
      return null;
    case "STOPSIGNAL":
      return result.expanded.length === 1 ? checkSignal(result.expanded[0]) : null;
    case "VOLUME":
      return result.expanded.some((v) => v === "")
        ? "VOLUME specified can not be an empty string"
        : null;
    case "COPY":
    case "ADD":
      return copyProblem(inst, result);
    case "RUN":
      return mountProblem(result);
    default:
      return null;
  }
}

/** RUN `--mount` values once expanded (`commands_runmount.go` `setMountState` with an expander). */
function mountProblem(result: ExpandedInstruction): string | null {
  for (const flag of result.flags.map(parseFlag)) {
    if (flag.name !== "mount" || flag.value === undefined) continue;
    try {
      parseRunMount(flag.value, (word) => word);
    } catch (e) {
      if (e instanceof RunFlagError) return e.message;
      throw e;
    }
  }
  return null;
}

function copyProblem(inst: Instruction, result: ExpandedInstruction): string | null {
  const flags = new Map(result.flags.map((f) => parseFlag(f)).map((f) => [f.name, f.value]));
  const chmod = flags.get("chmod");
  if (chmod) {
    const problem = checkChmod(chmod);
    if (problem) return `--chmod: ${problem}`;
  }
  // BuildKit's SourcePaths: the sources that are not here-documents.
  const sources = result.expanded.filter((_, i) =>
    i < inst.args.length - 1 && !parseHeredocWord(inst.args[i])
  );
  const checksum = flags.get("checksum");
  if (inst.keyword === "ADD" && checksum) return checksumProblem(checksum, sources);
  if (inst.keyword !== "COPY") return null;
  for (const src of sources) {
    if (isGitSource(src)) return `source can't be a git ref for COPY: ${src}`;
    if (isHttpSource(src)) return `source can't be a URL for COPY: ${src}`;
  }
  return null;
}

const DIGEST = /^(?:sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})$/;

function checksumProblem(checksum: string, sources: string[]): string | null {
  if (sources.length !== 1) return "checksum can't be specified for multiple sources";
  const src = sources[0];
  if (isHttpSource(src)) {
    return DIGEST.test(checksum) ? null : `--checksum: invalid digest "${checksum}"`;
  }
  return isGitSource(src) ? null : "checksum requires HTTP(S) or Git sources";
}

/** BuildKit's `isHTTPSource`: `http://` or `https://`, and not a git URL. */
export function isHttpSource(src: string): boolean {
  return /^https?:\/\//.test(src) && !isGitSource(src);
}

/**
 * BuildKit's `isGitSource` (`dfgitutil.ParseGitRef`): a `git://` or `ssh://` URL, an `http(s)://`
 * URL whose path ends in `.git`, or an scp-style `user@host:path`.
 */
export function isGitSource(src: string): boolean {
  const scheme = /^([a-zA-Z0-9]+):\/\//.exec(src);
  if (scheme) {
    const proto = scheme[1].toLowerCase();
    if (proto === "git" || proto === "ssh") return true;
    if (proto !== "http" && proto !== "https") return false;
    try {
      return new URL(src).pathname.endsWith(".git");
    } catch {
      return false;
    }
  }
  return /^[a-zA-Z0-9\-_]+@[a-zA-Z0-9\-.]+:/.test(src);
}
