/**
 * The value formats Docker checks in instruction arguments and flags: Go durations (HEALTHCHECK),
 * port specifications (EXPOSE), signals (STOPSIGNAL), file modes (`--chmod`, octal or symbolic),
 * digests (`ADD --checksum`) and stage names (`FROM … AS name`). Each `check…` function returns
 * null when the value is valid and otherwise a short reason.
 * @module
 */

const DURATION_UNITS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  "\u00b5s": 1e3,
  "\u03bcs": 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Go's `time.ParseDuration`, in nanoseconds; null when `s` is not a duration. */
export function parseGoDuration(s: string): number | null {
  let rest = s;
  let sign = 1;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    sign = rest[0] === "-" ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === "0") return 0;
  if (rest === "") return null;
  let total = 0;
  const component = /([0-9]*)(?:\.([0-9]*))?([^0-9.]+)/y;
  while (component.lastIndex < rest.length) {
    const m = component.exec(rest);
    if (!m || (m[1] === "" && (m[2] ?? "") === "")) return null;
    const unit = DURATION_UNITS[m[3]];
    if (unit === undefined) return null;
    total += Number(`${m[1] || "0"}.${m[2] || "0"}`) * unit;
  }
  return sign * total;
}

const PROTOCOLS = ["tcp", "udp", "sctp"];

/**
 * Checks an EXPOSE value as BuildKit's `parsePortSpec` does (`dockerfile2llb/convert_expose.go`):
 * `[[ip:]hostPort:]containerPort[/proto]`, split at every `:` (the last two parts are the ports,
 * the rest the IP), the protocol after the container port's first `/` (`tcp` when empty, any
 * case), ports and `from-to` ranges of 0 to 65535, a valid IP, and a host range as long as the
 * container range unless the container port is a single port.
 */
export function checkPortSpec(spec: string): string | null {
  const parts = spec.split(":");
  const n = parts.length;
  const containerSpec = parts[n - 1];
  const hostPort = n >= 2 ? parts[n - 2] : "";
  let ip = n >= 3 ? parts.slice(0, n - 2).join(":") : "";
  const slash = containerSpec.indexOf("/");
  const port = slash < 0 ? containerSpec : containerSpec.slice(0, slash);
  const proto = slash < 0 ? "" : containerSpec.slice(slash + 1).toLowerCase();
  if (port === "") return `no port number in "${spec}"`;
  if (proto !== "" && !PROTOCOLS.includes(proto)) return `invalid protocol "${proto}"`;
  if (ip.startsWith("[")) {
    if (!ip.endsWith("]")) return `invalid IP address "${ip}"`;
    ip = ip.slice(1, -1);
  }
  if (ip !== "" && !isGoIP(ip)) return `invalid IP address "${ip}"`;
  const container = portRange(port);
  if (typeof container === "string") return container;
  if (hostPort === "") return null;
  const host = portRange(hostPort);
  if (typeof host === "string") return `invalid host port "${hostPort}"`;
  if (container[1] - container[0] !== host[1] - host[0] && container[1] !== container[0]) {
    return `invalid ranges for container and host ports: ${port} and ${hostPort}`;
  }
  return null;
}

/** BuildKit's `parsePortRange`: `port` or `from-to`, each `strconv.ParseUint(p, 10, 16)`. */
function portRange(text: string): [number, number] | string {
  const range = text.split("-");
  if (range.length > 2) return `invalid port range "${text}"`;
  const numbers = range.map((p) => (/^[0-9]+$/.test(p) ? Number(p) : NaN));
  if (numbers.some((p) => !(p >= 0 && p <= 65535))) return `invalid port "${text}"`;
  if (numbers.length === 2 && numbers[1] < numbers[0]) return `invalid port range "${text}"`;
  return [numbers[0], numbers[numbers.length - 1]];
}

/** Go's `net.ParseIP` (through `netip.ParseAddr`, zones refused): IPv4 dotted quad or IPv6. */
export function isGoIP(text: string): boolean {
  const firstDot = text.indexOf(".");
  const firstColon = text.indexOf(":");
  if (firstColon < 0 || (firstDot >= 0 && firstDot < firstColon)) return isIPv4(text);
  return isIPv6(text);
}

function isIPv4(text: string): boolean {
  const fields = text.split(".");
  return fields.length === 4 &&
    fields.every((f) => /^(?:0|[1-9][0-9]{0,2})$/.test(f) && Number(f) <= 255);
}

function isIPv6(text: string): boolean {
  if (text.includes("%")) return false;
  let body = text;
  const lastColon = text.lastIndexOf(":");
  const tail = text.slice(lastColon + 1);
  let extra = 0;
  if (tail.includes(".")) {
    if (!isIPv4(tail)) return false;
    body = text.slice(0, lastColon + 1) + "0";
    extra = 1;
  }
  const halves = body.split("::");
  if (halves.length > 2) return false;
  const groups = (half: string) => half === "" ? [] : half.split(":");
  const all = halves.flatMap(groups);
  if (!all.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return false;
  const count = all.length + extra;
  return halves.length === 2 ? count < 8 : count === 8;
}

// deno-fmt-ignore
const SIGNALS = new Set([
  "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
  "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
  "TTIN", "TTOU", "UNUSED", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ", "RTMIN",
  "RTMAX",
]);

/** Checks a STOPSIGNAL value: a non-zero number or a signal name, with or without `SIG`. */
export function checkSignal(value: string): string | null {
  if (/^[+-]?[0-9]+$/.test(value)) return Number(value) === 0 ? "signal 0 is not valid" : null;
  const name = value.toUpperCase().replace(/^SIG/, "");
  if (SIGNALS.has(name)) return null;
  const rt = /^RT(MIN\+|MAX-)([0-9]+)$/.exec(name);
  if (rt && Number(rt[2]) >= 1 && Number(rt[2]) <= (rt[1] === "MIN+" ? 15 : 14)) return null;
  return `invalid signal "${value}"`;
}

/** Checks a `--chmod` value: octal (`755`, `0644`) or symbolic (`u+x,go=rX`). */
export function checkChmod(value: string): string | null {
  if (/^[0-7]+$/.test(value)) {
    return parseInt(value, 8) <= 0o7777 ? null : `invalid mode "${value}": at most 7777`;
  }
  const clause = /^[ugoa]*(?:[-+=](?:[rwxXst]*|[ugo]))+$/;
  if (value !== "" && value.split(",").every((part) => clause.test(part))) return null;
  return `invalid mode "${value}": expected octal (0755) or symbolic (u+x,go-w)`;
}

const DIGEST_HEX: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

/** Checks an `ADD --checksum` value: `sha256:<hex>` (or sha384, sha512), or a git commit. */
export function checkChecksum(value: string): string | null {
  const colon = value.indexOf(":");
  if (colon < 0) {
    return /^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(value)
      ? null
      : `invalid checksum "${value}": expected sha256:<64 hex digits>`;
  }
  const length = DIGEST_HEX[value.slice(0, colon)];
  const hex = value.slice(colon + 1);
  if (length && hex.length === length && /^[0-9a-f]+$/.test(hex)) return null;
  return `invalid checksum "${value}": expected sha256:<64 hex digits>`;
}

/** BuildKit's rule for stage names (after lower-casing). */
export const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;
