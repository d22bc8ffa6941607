/**
 * Authentication (bearer tokens, client certificates: CN is the user, O the groups) and RBAC
 * authorization from a static map of users to rules, with kube-apiserver's exact 401 and 403
 * Status messages (`jobs.batch is forbidden: User "system:serviceaccount:ns:sa" cannot create
 * resource "jobs" in API group "batch" in the namespace "ns"`).
 * @module
 */
import { ApiError, qualified, unauthorized } from "./status.ts";

/** One RBAC PolicyRule (`*` matches anything); `namespaces` limits it like a RoleBinding does. */
export interface Rule {
  verbs: string[];
  apiGroups: string[];
  /** `jobs`, `pods`, `pods/log`, `nodes`, `secrets`, or `*`. */
  resources: string[];
  resourceNames?: string[];
  /** The namespaces the rule applies in (a Role bound there); absent: everywhere (ClusterRole). */
  namespaces?: string[];
}

/** A user's groups and rules. Members of `system:masters` may do anything. */
export interface UserSpec {
  groups?: string[];
  rules?: Rule[];
}

/** Who may talk to the fake API server. */
export interface AuthConfig {
  /** Bearer token → user name. */
  tokens: Record<string, string>;
  /** User name → groups and rules (client-certificate users are looked up by CN here too). */
  users: Record<string, UserSpec>;
  /** Requests without credentials act as `system:anonymous` (else 401). */
  anonymous?: boolean;
}

/** An authenticated user. */
export interface UserInfo {
  name: string;
  groups: string[];
}

/** A verified client certificate's subject. */
export interface ClientCert {
  cn: string;
  orgs: string[];
}

/** What a request wants to do (`verb` is the RBAC verb: get, list, watch, create, delete…). */
export interface Attributes {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

/** Everything: the rules of `cluster-admin`. */
export const ALL: Rule[] = [{ verbs: ["*"], apiGroups: ["*"], resources: ["*"] }];

/** Finds the user of a request (token first, then client certificate); 401 when unknown. */
export function authenticate(
  cfg: AuthConfig,
  authorization: string | null,
  cert: ClientCert | undefined,
): UserInfo {
  const m = authorization?.match(/^Bearer\s+(\S+)$/i);
  if (m) {
    const name = cfg.tokens[m[1]];
    if (!name) throw unauthorized();
    return { name, groups: [...groupsOf(cfg, name), "system:authenticated"] };
  }
  if (authorization) throw unauthorized();
  if (cert) {
    return {
      name: cert.cn,
      groups: [...cert.orgs, ...groupsOf(cfg, cert.cn), "system:authenticated"],
    };
  }
  if (cfg.anonymous) return { name: "system:anonymous", groups: ["system:unauthenticated"] };
  throw unauthorized();
}

function groupsOf(cfg: AuthConfig, name: string): string[] {
  const groups = cfg.users[name]?.groups ?? [];
  const sa = name.match(/^system:serviceaccount:([^:]+):/);
  return sa ? [...groups, "system:serviceaccounts", `system:serviceaccounts:${sa[1]}`] : groups;
}

function has(list: string[] | undefined, v: string): boolean {
  return !list || list.includes("*") || list.includes(v);
}

/** Whether the user's rules allow the request. */
export function allowed(cfg: AuthConfig, user: UserInfo, a: Attributes): boolean {
  if (user.groups.includes("system:masters")) return true;
  const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  return (cfg.users[user.name]?.rules ?? []).some((r) =>
    has(r.verbs, a.verb) && has(r.apiGroups, a.group) && r.resources.length > 0 &&
    has(r.resources, res) &&
    (r.resourceNames === undefined || (a.name !== undefined && r.resourceNames.includes(a.name))) &&
    (r.namespaces === undefined ||
      (a.namespace !== undefined && r.namespaces.includes(a.namespace)))
  );
}

/**
 * 403 Forbidden as kube-apiserver's RBAC authorizer words it: `pods "p" is forbidden: User "u"
 * cannot get resource "pods/log" in API group "" in the namespace "ns"` (`at the cluster scope`
 * for cluster-scoped resources).
 */
export function forbidden(user: UserInfo, a: Attributes): ApiError {
  const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const where = a.namespace ? `in the namespace "${a.namespace}"` : "at the cluster scope";
  const msg = `${qualified(a.resource, a.group, a.name)} is forbidden: User "${user.name}" ` +
    `cannot ${a.verb} resource "${res}" in API group "${a.group}" ${where}`;
  return new ApiError(403, "Forbidden", msg, {
    name: a.name,
    group: a.group || undefined,
    kind: a.resource,
  });
}

/** Throws 403 unless allowed. */
export function authorize(cfg: AuthConfig, user: UserInfo, a: Attributes): void {
  if (!allowed(cfg, user, a)) throw forbidden(user, a);
}
