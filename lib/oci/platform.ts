/**
 * Platforms (`os/arch[/variant]`): parsing with containerd's normalisation, formatting, matching,
 * and picking a manifest from an index.
 *
 * Canonical form (what {@link parsePlatform} and {@link normalizePlatform} return), as containerd's
 * `platforms.Normalize`: `arm64` has no variant (`arm64/v8` is the same platform), `amd64/v1` is
 * plain `amd64`, and `arm` always has one (`v7` by default). Matching compares canonical forms,
 * so an index entry `arm64` + variant `v8` (as Docker Hub's official images carry) matches a
 * request for `linux/arm64` and vice versa. What we *emit* in index entries and configs is the
 * caller's choice: {@link formatPlatform} prints the canonical form.
 * @module
 */
import { KanikoError, UsageError } from "../errors.ts";
import type { Descriptor, Index, Platform } from "./schemas.ts";

/** Operating systems Go knows (`GOOS`), the values the OCI spec uses for `os`. */
export const KNOWN_OS: readonly string[] = [
  "aix",
  "android",
  "darwin",
  "dragonfly",
  "freebsd",
  "hurd",
  "illumos",
  "ios",
  "js",
  "linux",
  "nacl",
  "netbsd",
  "openbsd",
  "plan9",
  "solaris",
  "wasip1",
  "windows",
  "zos",
];

/** Architectures Go knows (`GOARCH`), the values the OCI spec uses for `architecture`. */
export const KNOWN_ARCH: readonly string[] = [
  "386",
  "amd64",
  "amd64p32",
  "arm",
  "armbe",
  "arm64",
  "arm64be",
  "loong64",
  "mips",
  "mipsle",
  "mips64",
  "mips64le",
  "mips64p32",
  "mips64p32le",
  "ppc",
  "ppc64",
  "ppc64le",
  "riscv",
  "riscv64",
  "s390",
  "s390x",
  "sparc",
  "sparc64",
  "wasm",
];

const PART_RE = /^[a-z0-9._-]+$/;

/**
 * Normalises a platform as containerd does: lowercase, arch aliases (`x86_64`/`x86-64` → amd64,
 * `aarch64` → arm64, `i386`/`i686` → 386, `armhf` → arm v7, `armel` → arm v6), `arm64/v8` →
 * `arm64`, `amd64/v1` → `amd64`, `arm` → `arm/v7`, bare arm variants `5`–`8` → `v5`–`v8`.
 * Other fields (`os.version`, `os.features`) are kept.
 */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase() === "macos" ? "darwin" : p.os.toLowerCase();
  let arch = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() || undefined;
  switch (arch) {
    case "i386":
    case "i686":
      arch = "386";
      variant = undefined;
      break;
    case "x86_64":
    case "x86-64":
    case "amd64":
      arch = "amd64";
      if (variant === "v1") variant = undefined;
      break;
    case "aarch64":
    case "arm64":
      arch = "arm64";
      if (variant === "8" || variant === "v8" || variant === "v8.0") variant = undefined;
      break;
    case "armhf":
      arch = "arm";
      variant = "v7";
      break;
    case "armel":
      arch = "arm";
      variant = "v6";
      break;
    case "arm":
      if (variant === undefined || variant === "7") variant = "v7";
      else if (/^[5-8]$/.test(variant)) variant = `v${variant}`;
      break;
  }
  const out: Platform = { ...p, os, architecture: arch };
  if (variant) out.variant = variant;
  else delete out.variant;
  return out;
}

/**
 * Parses `os/arch[/variant]` (e.g. `linux/arm64`, `linux/arm/v7`) into a normalised platform.
 * Throws a {@link UsageError} for empty parts, too many parts, or an unknown os or arch.
 */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().split("/");
  if (parts.length < 2 || parts.length > 3) {
    throw new UsageError(`invalid platform "${text}": expected os/arch or os/arch/variant`, {
      hint: "e.g. linux/amd64 or linux/arm/v7",
    });
  }
  if (parts.some((x) => x === "" || !PART_RE.test(x.toLowerCase()))) {
    throw new UsageError(`invalid platform "${text}": empty or malformed part`, {
      hint: "e.g. linux/amd64 or linux/arm/v7",
    });
  }
  const [os, architecture, variant] = parts;
  const p = normalizePlatform({ os, architecture, ...(variant ? { variant } : {}) });
  if (!KNOWN_OS.includes(p.os)) {
    throw new UsageError(`invalid platform "${text}": unknown os "${os}"`, {
      hint: `use one of ${KNOWN_OS.join(", ")}`,
    });
  }
  if (!KNOWN_ARCH.includes(p.architecture)) {
    throw new UsageError(`invalid platform "${text}": unknown architecture "${architecture}"`, {
      hint: `use one of ${KNOWN_ARCH.join(", ")} (or x86_64, aarch64, armhf, armel, i386)`,
    });
  }
  return p;
}

/** Formats a platform as `os/arch[/variant]`, in canonical (normalised) form. */
export function formatPlatform(p: Platform): string {
  const n = normalizePlatform(p);
  return n.variant ? `${n.os}/${n.architecture}/${n.variant}` : `${n.os}/${n.architecture}`;
}

/**
 * True when `have` satisfies `want`: same os, architecture and variant after normalisation
 * (so `arm64` ≡ `arm64/v8`, `arm` ≡ `arm/v7`). When `want` sets `os.version`, it must be equal.
 */
export function platformMatches(want: Platform, have: Platform): boolean {
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  if (w.os !== h.os || w.architecture !== h.architecture || w.variant !== h.variant) return false;
  return w["os.version"] === undefined || w["os.version"] === h["os.version"];
}

/** Options for {@link selectManifest}. */
export interface SelectManifestOptions {
  /** Names the index in the error, e.g. `docker.io/library/busybox:1.36`. */
  what?: string;
}

/**
 * The first descriptor of `index` whose platform matches `want` (as the image spec asks: the
 * first match wins; entries without a platform are skipped). Throws a {@link KanikoError}
 * listing the available platforms when none matches.
 */
export function selectManifest(
  index: Index,
  want: Platform,
  options: SelectManifestOptions = {},
): Descriptor {
  for (const d of index.manifests) {
    if (d.platform && platformMatches(want, d.platform)) return d;
  }
  const available = index.manifests.flatMap((d) => d.platform ? [formatPlatform(d.platform)] : [])
    .filter((p) => p !== "unknown/unknown");
  const what = options.what ? ` in ${options.what}` : "";
  throw new KanikoError(`no image for platform ${formatPlatform(want)}${what}`, {
    hint: available.length
      ? `available platforms: ${[...new Set(available)].join(", ")}`
      : "the index lists no platforms",
    code: "PLATFORM_NOT_FOUND",
  });
}

/** The platform this process runs on, normalised (e.g. `linux/amd64`). */
export function hostPlatform(): Platform {
  return normalizePlatform({ os: Deno.build.os, architecture: Deno.build.arch });
}
