/**
 * The fake API server's storage: every object of every resource, one global monotonically
 * increasing resourceVersion (as etcd's revision), and a retained window of change events that
 * watches replay from a resourceVersion. A watch from before the window gets 410
 * ({@link expired}); `compact()` empties the window so tests can force that.
 * @module
 */
import { alreadyExists, expired, notFound } from "./status.ts";

/** An API object: `metadata` plus anything. */
// deno-lint-ignore no-explicit-any
export type KObject = { metadata: ObjectMeta } & Record<string, any>;

/** The part of `metav1.ObjectMeta` the fake uses. */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  generateName?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  // deno-lint-ignore no-explicit-any
  ownerReferences?: any[];
}

/** A resource the fake serves. */
export interface ResourceInfo {
  /** Plural, as in URLs and RBAC rules: `jobs`. */
  resource: string;
  kind: string;
  /** API group, "" for core. */
  group: string;
  apiVersion: string;
  namespaced: boolean;
}

/** The resources served. */
export const RESOURCES: Record<string, ResourceInfo> = {
  nodes: { resource: "nodes", kind: "Node", group: "", apiVersion: "v1", namespaced: false },
  pods: { resource: "pods", kind: "Pod", group: "", apiVersion: "v1", namespaced: true },
  secrets: { resource: "secrets", kind: "Secret", group: "", apiVersion: "v1", namespaced: true },
  jobs: { resource: "jobs", kind: "Job", group: "batch", apiVersion: "batch/v1", namespaced: true },
};

/** A watch event as sent on the wire. */
export interface WatchEvent {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: KObject | Record<string, unknown>;
}

/** One stored change. */
export interface Change {
  rv: number;
  resource: string;
  type: "ADDED" | "MODIFIED" | "DELETED";
  object: KObject;
}

/** RFC 3339 without fractional seconds, as Kubernetes writes `metav1.Time`. */
export function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

function key(ns: string | undefined, name: string): string {
  return `${ns ?? ""}/${name}`;
}

/** The object store with its global resourceVersion and change log. */
export class Store {
  #rv = 0;
  #compacted = 0;
  #log: Change[] = [];
  #objects = new Map<string, Map<string, KObject>>();
  #listeners = new Set<(c: Change) => void>();
  /** How many changes are kept for watches (older resourceVersions get 410). */
  window: number;

  constructor(window = 1000) {
    this.window = window;
    for (const r of Object.keys(RESOURCES)) this.#objects.set(r, new Map());
  }

  /** The current (latest) resourceVersion. */
  get resourceVersion(): number {
    return this.#rv;
  }

  /** Drops every retained change: a watch from any resourceVersion before now gets 410. */
  compact(): void {
    this.#compacted = this.#rv;
    this.#log = [];
  }

  #record(resource: string, type: Change["type"], object: KObject): void {
    const change = { rv: this.#rv, resource, type, object: structuredClone(object) };
    this.#log.push(change);
    while (this.#log.length > this.window) this.#compacted = this.#log.shift()!.rv;
    for (const l of [...this.#listeners]) l(change);
  }

  #map(resource: string): Map<string, KObject> {
    const m = this.#objects.get(resource);
    if (!m) throw new Error(`unknown resource ${resource}`);
    return m;
  }

  /** Stores a new object (uid, resourceVersion, creationTimestamp set); emits ADDED. */
  create(resource: string, obj: KObject): KObject {
    const info = RESOURCES[resource];
    const m = this.#map(resource);
    const k = key(obj.metadata.namespace, obj.metadata.name);
    if (m.has(k)) throw alreadyExists(resource, info.group, obj.metadata.name);
    const stored = structuredClone(obj);
    stored.metadata.uid ??= crypto.randomUUID();
    stored.metadata.resourceVersion = String(++this.#rv);
    stored.metadata.creationTimestamp = now();
    m.set(k, stored);
    this.#record(resource, "ADDED", stored);
    return structuredClone(stored);
  }

  /** A copy of one object, or undefined. */
  find(resource: string, ns: string | undefined, name: string): KObject | undefined {
    const o = this.#map(resource).get(key(ns, name));
    return o && structuredClone(o);
  }

  /** A copy of one object; 404 Status when missing. */
  get(resource: string, ns: string | undefined, name: string): KObject {
    const o = this.find(resource, ns, name);
    if (!o) throw notFound(resource, RESOURCES[resource].group, name);
    return o;
  }

  /** Copies of the objects of a resource (in a namespace when given), by name. */
  list(resource: string, ns?: string, filter?: (o: KObject) => boolean): KObject[] {
    return [...this.#map(resource).values()]
      .filter((o) => ns === undefined || o.metadata.namespace === ns)
      .filter((o) => !filter || filter(o))
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))
      .map((o) => structuredClone(o));
  }

  /**
   * Applies `fn` to a copy of the object and stores it with a new resourceVersion (MODIFIED).
   * Returns the stored copy, or undefined when the object is gone (or `fn` returns false).
   */
  update(
    resource: string,
    ns: string | undefined,
    name: string,
    fn: (o: KObject) => void | boolean,
  ): KObject | undefined {
    const m = this.#map(resource);
    const cur = m.get(key(ns, name));
    if (!cur) return undefined;
    const next = structuredClone(cur);
    if (fn(next) === false) return undefined;
    next.metadata.resourceVersion = String(++this.#rv);
    m.set(key(ns, name), next);
    this.#record(resource, "MODIFIED", next);
    return structuredClone(next);
  }

  /** Removes an object; the DELETED event carries it with a new resourceVersion. */
  remove(resource: string, ns: string | undefined, name: string): KObject | undefined {
    const m = this.#map(resource);
    const cur = m.get(key(ns, name));
    if (!cur) return undefined;
    m.delete(key(ns, name));
    cur.metadata.resourceVersion = String(++this.#rv);
    this.#record(resource, "DELETED", cur);
    return structuredClone(cur);
  }

  /** The retained changes of a resource after `rv`; 410 when `rv` is older than the window. */
  since(resource: string, rv: number): Change[] {
    if (rv < this.#compacted) throw expired(rv, this.#compacted + 1);
    return this.#log.filter((c) => c.rv > rv && c.resource === resource);
  }

  /** Calls `fn` on every change from now on; returns the unsubscribe function. */
  subscribe(fn: (c: Change) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }
}
