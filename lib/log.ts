/**
 * The process logger: Kaniko's logrus levels (trace … panic, default info), three formats
 * (`text`, `color`, `json`), optional timestamps. Logs go to stderr; command output (manifests,
 * digests, tags) goes to stdout and never through this module. Every message and field is passed
 * through {@link redact}, so credentials in URLs, `Authorization` values and registered secrets
 * never reach the output.
 *
 * ```ts
 * import { configureLog, log } from "./log.ts";
 * configureLog({ level: "debug", format: "json", timestamp: true });
 * log.info("pushing", { ref: "registry.example/app:1" });
 * ```
 * @module
 */

/** Log levels, from the most verbose to the least (logrus' names). */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "panic"] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = typeof LOG_LEVELS[number];

/** Log formats, as Kaniko's `--log-format` names them. */
export const LOG_FORMATS = ["text", "color", "json"] as const;
/** One of {@link LOG_FORMATS}. */
export type LogFormat = typeof LOG_FORMATS[number];

/** What `--verbosity`, `--log-format` and `--log-timestamp` set. */
export interface LogConfig {
  /** Least severe level written. */
  level: LogLevel;
  /** Line format. `color` is `text` with ANSI colours when stderr is a terminal. */
  format: LogFormat;
  /** Prefix text lines with an ISO timestamp, add `time` to JSON lines. */
  timestamp: boolean;
}

/** Structured context added to a log line. */
export type LogFields = Record<string, unknown>;

/** Where and how lines are written; tests replace the writer. */
export interface LogOutput {
  /** Receives each finished line, without the trailing newline. Default: stderr. */
  write?: (line: string) => void;
  /** Force ANSI colours on or off; by default decided from the format, the TTY and NO_COLOR. */
  color?: boolean;
  /** Clock, for tests. */
  now?: () => Date;
}

/** The logger API. */
export interface Logger {
  /** Logs at trace level. */
  trace(msg: string, fields?: LogFields): void;
  /** Logs at debug level. */
  debug(msg: string, fields?: LogFields): void;
  /** Logs at info level. */
  info(msg: string, fields?: LogFields): void;
  /** Logs at warn level. */
  warn(msg: string, fields?: LogFields): void;
  /** Logs at error level. */
  error(msg: string, fields?: LogFields): void;
  /** Logs at any level. */
  log(level: LogLevel, msg: string, fields?: LogFields): void;
  /** Logs a warning once per `key` for the life of the process (e.g. registry `Warning` headers). */
  warnOnce(key: string, msg: string, fields?: LogFields): void;
  /** Whether a message at `level` would be written. */
  enabled(level: LogLevel): boolean;
}

const DEFAULT_CONFIG: LogConfig = { level: "info", format: "color", timestamp: false };
const COLORS: Record<LogLevel, string> = {
  trace: "37",
  debug: "37",
  info: "36",
  warn: "33",
  error: "31",
  fatal: "31",
  panic: "31",
};
const RESERVED = new Set(["level", "msg", "time"]);
const started = performance.now();
const encoder = new TextEncoder();

let config: LogConfig = { ...DEFAULT_CONFIG };
let writer: (line: string) => void = writeStderr;
let useColor = false;
let clock: () => Date = () => new Date();
const warned = new Set<string>();
const secrets = new Set<string>();

/** Parses a level name as logrus does (case-insensitive, `warning` = `warn`). */
export function parseLogLevel(text: string): LogLevel | undefined {
  const name = text.trim().toLowerCase();
  if (name === "warning") return "warn";
  return (LOG_LEVELS as readonly string[]).includes(name) ? name as LogLevel : undefined;
}

/** Sets the level, format and timestamps of the process logger (unset fields keep their value). */
export function configureLog(settings: Partial<LogConfig>, output: LogOutput = {}): void {
  config = { ...config, ...stripUndefined(settings) };
  if (output.write) writer = output.write;
  if (output.now) clock = output.now;
  useColor = output.color ?? (config.format === "color" && stderrIsColorTerminal());
}

/** The current logger settings. */
export function logConfig(): LogConfig {
  return { ...config };
}

/** Restores the defaults, the stderr writer, and forgets warnOnce keys and secrets (for tests). */
export function resetLog(): void {
  config = { ...DEFAULT_CONFIG };
  writer = writeStderr;
  clock = () => new Date();
  useColor = false;
  warned.clear();
  secrets.clear();
}

/**
 * Registers a secret value (a password, a token) so that {@link redact} masks every occurrence of
 * it. Values shorter than 4 characters are ignored (they would mask ordinary text).
 */
export function addSecret(value: string): void {
  if (value.length >= 4) secrets.add(value);
}

const SECRET_KEYS =
  "password|passwd|secret|token|access_token|refresh_token|identitytoken|registrytoken|auth|" +
  "api[_-]?key|client_secret";
// Schemes whose userinfo is a credential (not image references such as `docker://a:1@sha256:…`).
const URL_SCHEMES = "(?:https?|wss?|git|git\\+https?|git\\+ssh|ssh|ftps?|s3|gs)";
const REDACTIONS: [RegExp, string][] = [
  // scheme://user:password@host -> scheme://user:***@host
  [
    new RegExp(`\\b(${URL_SCHEMES}:\\/\\/)([^\\s:@/"'\\\\]+):([^\\s@/"'\\\\]+)@`, "gi"),
    "$1$2:***@",
  ],
  // scheme://token@host -> scheme://***@host
  [new RegExp(`\\b(${URL_SCHEMES}:\\/\\/)([^\\s:@/"'\\\\]+)@`, "gi"), "$1***@"],
  // Authorization: Bearer xyz, "authorization":"Basic xyz"
  [
    /\b((?:proxy-)?authorization)(\\?"?\s*[:=]\s*\\?"?)((?:bearer|basic|token|negotiate)\s+)?([^\s"'\\,;]+)/gi,
    "$1$2$3***",
  ],
  // bare credentials after an auth scheme
  [/\b(Bearer|Basic)\s+(?!realm=)([A-Za-z0-9\-._~+/]{8,}=*)/g, "$1 ***"],
  // "password":"x" (also JSON escaped inside a string)
  [new RegExp(`(\\\\?"(?:${SECRET_KEYS})\\\\?"\\s*:\\s*\\\\?")([^"\\\\]+)`, "gi"), "$1***"],
  // password=x, token=x
  [new RegExp(`\\b(${SECRET_KEYS})=([^\\s&"',;]+)`, "gi"), "$1=***"],
  // pre-signed URL query parameters: X-Amz-Signature=…, sig=…, key=…
  [/([?&][^=&\s"']*(?:signature|credential|token|sig|key)[^=&\s"']*=)([^&\s"']+)/gi, "$1***"],
];

/**
 * Masks credentials in `text`: passwords and tokens in URLs (`https://user:pass@host` becomes
 * `https://user:***@host`), `Authorization` header values, `password=`/`token=` pairs, JSON
 * `"password"`/`"auth"`/`"token"` values, signed-URL query parameters, and every value registered
 * with {@link addSecret}.
 */
export function redact(text: string): string {
  let out = text;
  for (const secret of secrets) {
    if (out.includes(secret)) out = out.split(secret).join("***");
  }
  for (const [pattern, replacement] of REDACTIONS) out = out.replace(pattern, replacement);
  return out;
}

/** The process logger. */
export const log: Logger = {
  trace: (msg, fields) => emit("trace", msg, fields),
  debug: (msg, fields) => emit("debug", msg, fields),
  info: (msg, fields) => emit("info", msg, fields),
  warn: (msg, fields) => emit("warn", msg, fields),
  error: (msg, fields) => emit("error", msg, fields),
  log: (level, msg, fields) => emit(level, msg, fields),
  warnOnce(key, msg, fields) {
    if (warned.has(key)) return;
    warned.add(key);
    emit("warn", msg, fields);
  },
  enabled: (level) => rank(level) >= rank(config.level),
};

function rank(level: LogLevel): number {
  return LOG_LEVELS.indexOf(level);
}

function emit(level: LogLevel, msg: string, fields?: LogFields): void {
  if (rank(level) < rank(config.level)) return;
  const line = config.format === "json"
    ? formatJson(level, msg, fields)
    : formatText(level, msg, fields);
  try {
    writer(line);
  } catch {
    // A closed stderr must not turn a log line into a failure.
  }
}

function formatJson(level: LogLevel, msg: string, fields: LogFields = {}): string {
  const record: Record<string, unknown> = { level, msg: redact(msg) };
  if (config.timestamp) record.time = clock().toISOString();
  for (const [key, value] of Object.entries(fields)) {
    record[RESERVED.has(key) ? `fields.${key}` : key] = value;
  }
  try {
    return JSON.stringify(record, jsonValue);
  } catch {
    return JSON.stringify({ level, msg: redact(msg), fields: redact(String(fields)) });
  }
}

function jsonValue(_key: string, value: unknown): unknown {
  if (typeof value === "string") return redact(value);
  if (value instanceof Error) return redact(value.message);
  if (typeof value === "bigint") return value.toString();
  return value;
}

function formatText(level: LogLevel, msg: string, fields: LogFields = {}): string {
  const stamp = config.timestamp
    ? clock().toISOString()
    : String(Math.floor((performance.now() - started) / 1000)).padStart(4, "0");
  const name = level.toUpperCase().slice(0, 4);
  const paint = (text: string) => useColor ? `\x1b[${COLORS[level]}m${text}\x1b[0m` : text;
  let line = `${paint(name)}[${stamp}] ${redact(msg)}`;
  for (const [key, value] of Object.entries(fields)) {
    line += ` ${paint(key)}=${redact(textValue(value))}`;
  }
  return line;
}

function textValue(value: unknown): string {
  if (value instanceof Error) return quoteIfNeeded(value.message);
  if (typeof value === "string") return quoteIfNeeded(value);
  if (value === undefined) return "undefined";
  try {
    return JSON.stringify(value, (_k, v) => typeof v === "bigint" ? v.toString() : v) ??
      String(value);
  } catch {
    return String(value);
  }
}

function quoteIfNeeded(text: string): string {
  return /^[\w.\-/:@+,%]+$/.test(text) ? text : JSON.stringify(text);
}

function stripUndefined(settings: Partial<LogConfig>): Partial<LogConfig> {
  return Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined));
}

function stderrIsColorTerminal(): boolean {
  try {
    const noColor = Deno.env.get("NO_COLOR");
    return Deno.stderr.isTerminal() && (noColor === undefined || noColor === "");
  } catch {
    return false;
  }
}

function writeStderr(line: string): void {
  const bytes = encoder.encode(line + "\n");
  let offset = 0;
  while (offset < bytes.length) offset += Deno.stderr.writeSync(bytes.subarray(offset));
}
