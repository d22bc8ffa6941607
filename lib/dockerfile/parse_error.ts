/**
 * The one error type of the Dockerfile front end for what the user wrote wrong: its message is one
 * line `FILE:LINE[:COL]: [KEYWORD: ]what`, e.g. `Dockerfile:3: ENV: must have two arguments`.
 * @module
 */

import { KanikoError } from "../errors.ts";

/** Where a {@link DockerfileError} points. */
export interface DockerfileErrorLocation {
  /** The Dockerfile's name as the user knows it. */
  file: string;
  /** 1-based line (the instruction's first line). */
  line: number;
  /** 1-based column, where it helps. */
  column?: number;
  /** The instruction's keyword, upper case, when the error is about one. */
  keyword?: string;
}

/** A syntax or argument error in a Dockerfile (exit code 1). */
export class DockerfileError extends KanikoError {
  /** The file name. */
  readonly file: string;
  /** 1-based line. */
  readonly line: number;
  /** 1-based column, if known. */
  readonly column?: number;
  /** The instruction's keyword, if any. */
  readonly keyword?: string;
  /** The message without the location. */
  readonly detail: string;

  constructor(
    location: DockerfileErrorLocation,
    detail: string,
    options: { cause?: unknown } = {},
  ) {
    const where = `${location.file}:${location.line}${
      location.column ? `:${location.column}` : ""
    }`;
    const what = location.keyword ? `${location.keyword}: ${detail}` : detail;
    super(`${where}: ${what}`, { code: "DOCKERFILE_SYNTAX", cause: options.cause });
    this.name = "DockerfileError";
    this.file = location.file;
    this.line = location.line;
    this.column = location.column;
    this.keyword = location.keyword;
    this.detail = detail;
  }
}
