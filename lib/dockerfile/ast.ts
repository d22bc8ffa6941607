/**
 * The syntax tree of a Dockerfile, as `parse --raw` prints it (see the command-line contract):
 * what the parser produces and every later stage (expansion, stages, build) reads.
 * @module
 */

/** A here-document attached to an instruction (`<<EOF`, `<<-EOF`, `<<"EOF"`). */
export interface Heredoc {
  /** The delimiter word, without quotes or `-`. */
  name: string;
  /** The body, lines joined with `\n`, with a final `\n`; tabs stripped for `<<-`. */
  content: string;
  /** False when the delimiter was quoted: no variable expansion in the body. */
  expand: boolean;
  /** True for `<<-` (leading tabs stripped). */
  chomp: boolean;
  /** The file descriptor written before `<<` (`3<<EOF`), when there is one. */
  fd?: number;
}

/** One instruction. */
export interface Instruction {
  /** Upper-case keyword (`RUN`, `COPY`, …). */
  keyword: string;
  /** 1-based line of the instruction's first line. */
  line: number;
  /** 1-based line of its last line (continuations and heredocs included). */
  endLine: number;
  /** The `--x[=y]` words as written, before the arguments. */
  flags: string[];
  /**
   * Arguments before variable expansion: the decoded array for the exec (JSON) form; for the
   * shell form of RUN, CMD, ENTRYPOINT, SHELL and HEALTHCHECK's command one string with line
   * continuations removed; keys and values in order for ENV, LABEL and ARG; otherwise the
   * whitespace-separated words.
   */
  args: string[];
  /** True for the exec (JSON array) form. */
  json: boolean;
  heredocs: Heredoc[];
  /** For ONBUILD: the nested instruction. */
  onbuild: Instruction | null;
  /** The instruction's text as written (continuations joined), for messages and history. */
  original: string;
  /**
   * ENV, LABEL and ARG only: the arguments exactly as BuildKit's parser yields them, quotes and
   * escapes kept (what variable expansion must work on): for ENV and LABEL the keys and values in
   * order, for ARG the `name[=value]` words unsplit (so `ARG K` is `["K"]` and `ARG K=` is `["K="]`,
   * while `args` has `["K", ""]` for both).
   */
  rawArgs?: string[];
  /** ENV and LABEL only: true for the legacy `ENV key value` form (one pair, value to end of line). */
  legacyKeyValue?: boolean;
}

/** A parsed Dockerfile. */
export interface Dockerfile {
  /** The escape character in force (`\` or `` ` ``). */
  escape: string;
  /** Parser directives (`syntax`, `escape`, `check`), lower-case keys. */
  directives: Record<string, string>;
  instructions: Instruction[];
  /** Non-fatal findings (e.g. empty continuation lines, MAINTAINER deprecated), with line numbers. */
  warnings: ParseWarning[];
}

/** A non-fatal finding. */
export interface ParseWarning {
  line: number;
  message: string;
}
