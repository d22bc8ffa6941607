/**
 * Deterministic JSON for the documents we generate (manifests, indexes, configs, `index.json`),
 * so equal content always gives equal bytes and digests: object keys sorted recursively (by
 * UTF-16 code units, as RFC 8785), no insignificant whitespace, `undefined` members dropped.
 * Strings and numbers are serialised as `JSON.stringify` does.
 * @module
 */
import { KanikoError } from "../errors.ts";

/** Serialises `value` to canonical JSON text. Throws on cycles, bigints and non-finite numbers. */
export function canonicalJsonString(value: unknown): string {
  const out = serialize(value, new Set(), "$");
  if (out === undefined) {
    throw new KanikoError("canonical JSON: the top-level value is not serialisable");
  }
  return out;
}

/** Serialises `value` to canonical JSON as UTF-8 bytes (what gets hashed and stored). */
export function canonicalJson(value: unknown): Uint8Array {
  return new TextEncoder().encode(canonicalJsonString(value));
}

function serialize(value: unknown, seen: Set<object>, path: string): string | undefined {
  if (value !== null && typeof value === "object" && "toJSON" in value) {
    const toJSON = (value as { toJSON: unknown }).toJSON;
    if (typeof toJSON === "function") value = toJSON.call(value);
  }
  switch (typeof value) {
    case "undefined":
    case "function":
    case "symbol":
      return undefined;
    case "bigint":
      throw new KanikoError(`canonical JSON: bigint at ${path} is not serialisable`);
    case "number":
      if (!Number.isFinite(value)) {
        throw new KanikoError(`canonical JSON: non-finite number at ${path}`);
      }
      return JSON.stringify(value);
    case "string":
    case "boolean":
      return JSON.stringify(value);
  }
  if (value === null) return "null";
  const obj = value as object;
  if (seen.has(obj)) throw new KanikoError(`canonical JSON: cycle at ${path}`);
  seen.add(obj);
  try {
    if (Array.isArray(obj)) {
      const items = obj.map((v, i) => serialize(v, seen, `${path}[${i}]`) ?? "null");
      return `[${items.join(",")}]`;
    }
    const members: string[] = [];
    for (const key of Object.keys(obj).sort(compareKeys)) {
      const v = serialize((obj as Record<string, unknown>)[key], seen, `${path}.${key}`);
      if (v !== undefined) members.push(`${JSON.stringify(key)}:${v}`);
    }
    return `{${members.join(",")}}`;
  } finally {
    seen.delete(obj);
  }
}

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
