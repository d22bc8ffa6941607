/**
 * Logging flags, shared by every command: `--verbosity`/`-v`, `--log-format`, `--log-timestamp`.
 * @module
 */

import { LOG_FORMATS, LOG_LEVELS, type LogConfig, parseLogLevel } from "../log.ts";
import { UsageError } from "../errors.ts";
import type { FlagSpec, FlagValues } from "./flag_spec.ts";
import { quote } from "./values.ts";

const GROUP = "Logging";

/** The logging flags, with Kaniko's defaults. */
export const LOG_FLAGS: readonly FlagSpec[] = [
  {
    name: "verbosity",
    short: "v",
    kind: "choice",
    value: "level",
    help: "Log level",
    group: GROUP,
    default: "info",
    choices: LOG_LEVELS,
    parse: (value, flag) => {
      const level = parseLogLevel(value);
      if (level) return level;
      throw new UsageError(
        `invalid value ${quote(value)} for ${flag}: expected one of ${LOG_LEVELS.join(", ")}`,
      );
    },
  },
  {
    name: "log-format",
    kind: "choice",
    value: "format",
    help:
      "Log format; color is text with ANSI colours when stderr is a terminal and NO_COLOR is unset",
    group: GROUP,
    default: "color",
    choices: LOG_FORMATS,
  },
  {
    name: "log-timestamp",
    kind: "bool",
    help: "Timestamp in log output",
    group: GROUP,
    default: false,
  },
];

/** The logger settings from parsed flags. */
export function logConfigFrom(flags: FlagValues): LogConfig {
  return {
    level: flags.choice("verbosity"),
    format: flags.choice("log-format"),
    timestamp: flags.bool("log-timestamp"),
  };
}
