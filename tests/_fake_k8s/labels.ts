/**
 * Label selectors (`a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, comma = AND)
 * and the field selectors the fake supports (`metadata.name`, `metadata.namespace`,
 * `spec.nodeName`, `status.phase`), as `labels.Parse` and `fields.ParseSelector` accept them.
 * @module
 */
import { badRequest } from "./status.ts";
import type { KObject } from "./store.ts";

type Pred = (labels: Record<string, string>) => boolean;

/** Splits on commas outside parentheses. */
function terms(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur.trim());
      cur = "";
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

function term(t: string): Pred {
  let m = t.match(/^(\S+?)\s+(in|notin)\s+\((.*)\)$/);
  if (m) {
    const [, k, op, vals] = m;
    const set = new Set(vals.split(",").map((v) => v.trim()));
    return op === "in" ? (l) => k in l && set.has(l[k]) : (l) => !(k in l) || !set.has(l[k]);
  }
  m = t.match(/^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/);
  if (m) {
    const [, k, op, v] = m;
    return op === "!=" ? (l) => l[k] !== v : (l) => l[k] === v;
  }
  m = t.match(/^(!?)([A-Za-z0-9._\/-]+)$/);
  if (m) return m[1] ? (l) => !(m![2] in l) : (l) => m![2] in l;
  throw badRequest(`unable to parse requirement: ${JSON.stringify(t)}`);
}

/** A predicate on labels for a `labelSelector` query value (empty: everything). */
export function parseLabelSelector(s: string | undefined): Pred {
  const preds = s ? terms(s).map(term) : [];
  return (labels) => preds.every((p) => p(labels ?? {}));
}

const FIELDS: Record<string, (o: KObject) => string | undefined> = {
  "metadata.name": (o) => o.metadata.name,
  "metadata.namespace": (o) => o.metadata.namespace,
  "spec.nodeName": (o) => o.spec?.nodeName ?? "",
  "status.phase": (o) => o.status?.phase,
};

/** A predicate on objects for a `fieldSelector` query value. */
export function parseFieldSelector(s: string | undefined): (o: KObject) => boolean {
  const preds = (s ? terms(s) : []).map((t) => {
    const m = t.match(/^([^=!]+)(==|=|!=)(.*)$/);
    const get = m && FIELDS[m[1]];
    if (!m || !get) throw badRequest(`field label not supported: ${t.split(/[=!]/)[0]}`);
    return m[2] === "!=" ? (o: KObject) => get(o) !== m[3] : (o: KObject) => get(o) === m[3];
  });
  return (o) => preds.every((p) => p(o));
}

/** Whether a label set matches a `matchLabels` map (nodeSelector semantics). */
export function matchesMap(
  labels: Record<string, string> | undefined,
  want: Record<string, string>,
) {
  return Object.entries(want).every(([k, v]) => labels?.[k] === v);
}
