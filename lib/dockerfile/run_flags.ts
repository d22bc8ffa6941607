/**
 * The flags of RUN: `--mount` (bind, cache, tmpfs, secret, ssh), `--network` (default, none,
 * host) and `--security` (sandbox, insecure), with BuildKit's rules (`commands_runmount.go`,
 * `commands_runnetwork.go`, `commands_runsecurity.go`).
 * @module
 */

/** A parsed `RUN --mount`. */
export interface RunMount {
  type: "bind" | "cache" | "tmpfs" | "secret" | "ssh";
  from?: string;
  source?: string;
  target?: string;
  readOnly: boolean;
  /** `id=` (cache id, secret id, ssh id). */
  id?: string;
  sharing?: "shared" | "private" | "locked";
  required?: boolean;
  mode?: number;
  uid?: number;
  gid?: number;
  /** tmpfs `size=` as written. */
  size?: string;
  /** secret `env=`: the variable the secret is exposed as. */
  env?: string;
}

/** A malformed RUN flag value. */
export class RunFlagError extends Error {}

const MOUNT_TYPES = ["bind", "cache", "tmpfs", "secret", "ssh"];
const SHARING = ["shared", "private", "locked"];
// deno-fmt-ignore
const KEYS = [
  "type", "from", "source", "src", "target", "dst", "destination", "readonly", "ro", "readwrite",
  "rw", "required", "id", "sharing", "mode", "uid", "gid", "size", "env",
];

/**
 * Parses one `--mount` value (a CSV record of `key=value` fields). `expand` turns a value with
 * variables into its final text; without it, values that hold `$` are skipped, and so is the check
 * of how the fields combine, until the values are expanded (BuildKit checks them when it runs the
 * step).
 */
export function parseRunMount(value: string, expand?: (word: string) => string): RunMount {
  const mount: RunMount = { type: "bind", readOnly: true };
  let roAuto = true;
  let deferred = false;
  for (const field of parseCsvRecord(value)) {
    const eq = field.indexOf("=");
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    if (eq < 0) {
      roAuto = applyBareKey(mount, key, field) && roAuto;
      continue;
    }
    let val = field.slice(eq + 1);
    if (key === "from" && !expand && /\$./.test(val)) {
      throw new RunFlagError(
        `'from' doesn't support variable expansion, define alias stage instead`,
      );
    }
    if (expand) val = expand(val);
    else if (val.includes("$")) {
      deferred = true;
      continue;
    }
    if (applyKey(mount, key, val, field)) roAuto = false;
  }
  if (roAuto) mount.readOnly = mount.type !== "cache" && mount.type !== "tmpfs";
  // With a value still to expand, the combination is only known once expanded.
  if (!deferred) checkMount(mount);
  return mount;
}

/** A key without `=`: `ro`, `rw`, `required`. Returns false when it set the read-only mode. */
function applyBareKey(mount: RunMount, key: string, field: string): boolean {
  if (key === "readonly" || key === "ro" || key === "readwrite" || key === "rw") {
    mount.readOnly = key === "readonly" || key === "ro";
    return false;
  }
  if (key === "required") {
    if (mount.type !== "secret" && mount.type !== "ssh") {
      throw new RunFlagError(`unexpected key '${key}' for mount type '${mount.type}'`);
    }
    mount.required = true;
    return true;
  }
  throw new RunFlagError(`invalid field '${field}': must be a key=value pair`);
}

/** Applies `key=value`; returns true when it set the read-only mode explicitly. */
function applyKey(mount: RunMount, key: string, value: string, field: string): boolean {
  switch (key) {
    case "type":
      if (!MOUNT_TYPES.includes(value.toLowerCase())) {
        throw new RunFlagError(`unsupported mount type "${value}" (${MOUNT_TYPES.join(", ")})`);
      }
      mount.type = value.toLowerCase() as RunMount["type"];
      return false;
    case "readonly":
    case "ro":
    case "readwrite":
    case "rw": {
      const on = parseGoBool(value, key);
      mount.readOnly = key === "readonly" || key === "ro" ? on : !on;
      return true;
    }
    default:
      applyValueKey(mount, key, value, field);
      return false;
  }
}

function applyValueKey(mount: RunMount, key: string, value: string, field: string): void {
  if (key === "from") mount.from = value;
  else if (key === "source" || key === "src") mount.source = value;
  else if (key === "target" || key === "dst" || key === "destination") mount.target = value;
  else if (key === "id") mount.id = value;
  else if (key === "size") mount.size = value;
  else if (key === "env") mount.env = value;
  else if (key === "required") {
    if (mount.type !== "secret" && mount.type !== "ssh") {
      throw new RunFlagError(`unexpected key '${key}' for mount type '${mount.type}'`);
    }
    mount.required = parseGoBool(value, key);
  } else if (key === "sharing") {
    if (!SHARING.includes(value.toLowerCase())) {
      throw new RunFlagError(`unsupported sharing value "${value}" (${SHARING.join(", ")})`);
    }
    mount.sharing = value.toLowerCase() as RunMount["sharing"];
  } else if (key === "mode") mount.mode = parseUint(value, 8, key);
  else if (key === "uid" || key === "gid") mount[key] = parseUint(value, 10, key);
  else {
    throw new RunFlagError(`unexpected key '${key}' in '${field}' (keys: ${KEYS.join(", ")})`);
  }
}

function checkMount(m: RunMount): void {
  const fileInfoAllowed = m.type === "secret" || m.type === "ssh" || m.type === "cache";
  for (const key of ["mode", "uid", "gid"] as const) {
    if (m[key] !== undefined && !fileInfoAllowed) {
      throw new RunFlagError(`${key} not allowed for "${m.type}" type mounts`);
    }
  }
  if (m.sharing && m.type !== "cache") {
    throw new RunFlagError(`invalid cache sharing set for ${m.type} mount`);
  }
  if (m.size !== undefined && m.type !== "tmpfs") {
    throw new RunFlagError(`size not allowed for "${m.type}" type mounts`);
  }
  if (m.env !== undefined && m.type !== "secret") {
    throw new RunFlagError(`env not allowed for "${m.type}" type mounts`);
  }
  if (m.type === "secret") {
    if (m.from !== undefined) throw new RunFlagError("secret mount should not have a from");
    if (!m.source && !m.target && !m.id && m.env === undefined) {
      throw new RunFlagError("invalid secret mount: one of source, target, id or env required");
    }
    if (m.source && m.id) throw new RunFlagError("both source and id can't be set");
  }
}

/** Go's `strconv.ParseBool`. */
function parseGoBool(value: string, key: string): boolean {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(value)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(value)) return false;
  throw new RunFlagError(`invalid value for ${key}: ${value}`);
}

function parseUint(value: string, base: 8 | 10, key: string): number {
  const digits = base === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  const n = digits.test(value) ? parseInt(value, base) : NaN;
  if (!(n >= 0 && n <= 0xffffffff)) throw new RunFlagError(`invalid value ${value} for ${key}`);
  return n;
}

/** Go's `encoding/csv` reading one record: `,` separates, `"…"` quotes, `""` is a quote. */
export function parseCsvRecord(text: string): string[] {
  const fields: string[] = [];
  let i = 0;
  while (true) {
    if (text[i] === '"') {
      let field = "";
      i++;
      while (true) {
        const close = text.indexOf('"', i);
        if (close < 0) throw new RunFlagError(`extraneous or missing " in quoted-field: ${text}`);
        field += text.slice(i, close);
        i = close + 1;
        if (text[i] === '"') {
          field += '"';
          i++;
          continue;
        }
        break;
      }
      if (i < text.length && text[i] !== ",") {
        throw new RunFlagError(`extraneous or missing " in quoted-field: ${text}`);
      }
      fields.push(field);
    } else {
      const comma = text.indexOf(",", i);
      const field = text.slice(i, comma < 0 ? text.length : comma);
      if (field.includes('"')) throw new RunFlagError(`bare " in non-quoted-field: ${text}`);
      fields.push(field);
      i = comma < 0 ? text.length : comma;
    }
    if (i >= text.length) return fields;
    i++; // the comma
  }
}

const NETWORKS = ["default", "none", "host"];
const SECURITY = ["sandbox", "insecure"];

/** Checks `RUN --network`. */
export function checkRunNetwork(value: string): void {
  if (!NETWORKS.includes(value)) {
    throw new RunFlagError(`invalid network mode "${value}" (${NETWORKS.join(", ")})`);
  }
}

/** Checks `RUN --security`. */
export function checkRunSecurity(value: string): void {
  if (!SECURITY.includes(value)) {
    throw new RunFlagError(`security "${value}" is not valid (${SECURITY.join(", ")})`);
  }
}
