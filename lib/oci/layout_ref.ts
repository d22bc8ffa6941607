/**
 * `oci:DIR[:TAG]` references and the tag grammar of OCI image layouts.
 * @module
 */
import { UsageError } from "../errors.ts";

const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const COMPONENT = "[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*";
const REF_NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);

/** A parsed `oci:DIR[:TAG]` reference. */
export interface LayoutRef {
  dir: string;
  tag?: string;
}

/**
 * Parses `oci:DIR[:TAG]`. The text after the last `:` is the tag when it is a valid Docker tag
 * (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`, so never containing `/`); otherwise it all is DIR. So
 * `oci:/a/b:v1` → `/a/b` + `v1`, `oci:/a:b/c` → `/a:b/c`. A directory whose last component
 * contains `:` is written with a trailing slash (`oci:/a/x:1/`) or with a tag (`oci:/a/x:1:v1`).
 * (skopeo splits at the first `:` instead.)
 */
export function parseLayoutRef(ref: string): LayoutRef {
  if (!ref.startsWith("oci:")) {
    throw new UsageError(`"${ref}" is not an OCI layout reference`, {
      hint: "write it as oci:DIR or oci:DIR:TAG",
    });
  }
  const rest = ref.slice(4);
  const i = rest.lastIndexOf(":");
  if (i === rest.length - 1 || rest === "" || i === 0) {
    throw new UsageError(`"${ref}" has an empty directory or tag`, {
      hint: "write it as oci:DIR or oci:DIR:TAG",
    });
  }
  if (i > 0 && TAG_RE.test(rest.slice(i + 1))) {
    return { dir: rest.slice(0, i), tag: rest.slice(i + 1) };
  }
  return { dir: rest };
}

/** Formats a {@link LayoutRef} as `oci:DIR[:TAG]`. */
export function formatLayoutRef(ref: LayoutRef): string {
  return ref.tag ? `oci:${ref.dir}:${ref.tag}` : `oci:${ref.dir}`;
}

/**
 * Checks a tag against the `org.opencontainers.image.ref.name` grammar (components of
 * alphanumerics joined by `-._:@+` or `--`, separated by `/`); throws a {@link UsageError}.
 */
export function checkLayoutTag(tag: string): void {
  if (!REF_NAME_RE.test(tag)) {
    throw new UsageError(`invalid tag "${tag}" for an OCI layout`, {
      hint: "use letters, digits and . _ - (e.g. latest, v1.2)",
    });
  }
}
