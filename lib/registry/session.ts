/**
 * A registry session: one transport, one client per registry and direction, and the resolution
 * of pull references through `--registry-mirror` and `--registry-map` with Kaniko's fallback.
 * @module
 */
import { KanikoError } from "../errors.ts";
import { log } from "../log.ts";
import type { RawManifest } from "../oci/content.ts";
import { RegistryClient } from "./client.ts";
import type { HttpTransport } from "./http_types.ts";
import type { Direction, RegistryOptions } from "./options.ts";
import { pullCandidates, type Reference } from "./reference.ts";
import { RegistryRepository } from "./repository.ts";
import { Transport } from "./transport.ts";

/** A resolved pull: where the manifest came from, and its bytes. */
export interface ResolvedPull {
  repository: RegistryRepository;
  /** The reference that answered (a mirror's, or the original). */
  reference: Reference;
  manifest: RawManifest;
}

/** Owns the transport and the clients of one command or build. */
export class RegistrySession {
  readonly options: RegistryOptions;
  readonly transport: HttpTransport & { close?: () => void };
  #clients = new Map<string, RegistryClient>();

  constructor(options: RegistryOptions, transport?: HttpTransport) {
    this.options = options;
    this.transport = transport ?? new Transport();
  }

  /** The client for `registry` in `direction` (cached). */
  client(registry: string, direction: Direction): RegistryClient {
    const key = `${direction}|${registry}`;
    let client = this.#clients.get(key);
    if (!client) {
      client = new RegistryClient(registry, {
        transport: this.transport,
        options: this.options,
        direction,
      });
      this.#clients.set(key, client);
    }
    return client;
  }

  /** The repository a reference names, for reading (`pull`) or writing (`push`). */
  repository(ref: Reference, direction: Direction): RegistryRepository {
    return new RegistryRepository(
      this.client(ref.registry, direction),
      ref.repository,
      ref.digest ?? ref.tag ?? "latest",
    );
  }

  /**
   * Fetches the manifest `ref` names, trying registry mirrors and map entries first, then the
   * original registry (unless `--skip-default-registry-fallback`).
   */
  async resolvePull(ref: Reference): Promise<ResolvedPull> {
    const candidates = pullCandidates(ref, this.options);
    let lastError: unknown;
    for (const candidate of candidates) {
      const repository = this.repository(candidate, "pull");
      try {
        const manifest = await repository.getManifest();
        return { repository, reference: candidate, manifest };
      } catch (err) {
        lastError = err;
        if (candidates.length > 1) {
          log.info(`could not pull ${candidate.toString()}: ${(err as Error).message}`);
        }
      }
    }
    if (lastError === undefined) {
      throw new KanikoError(`no registry to pull ${ref.toString()} from`, {
        hint: "--skip-default-registry-fallback is set and no mirror or map entry matches",
      });
    }
    throw lastError;
  }

  /** Releases connections. */
  close(): void {
    this.transport.close?.();
  }
}
