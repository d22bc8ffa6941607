/**
 * Telling a registry's refusal of OCI media types apart from other failures, for
 * `--oci-mode=auto`: push the OCI tree, and when the registry refuses it, push the Docker form.
 * @module
 */
import { RegistryError } from "../registry/errors.ts";

/** Codes a registry answers a manifest it cannot take with (distribution, Quay, Nexus, Harbor). */
const REFUSAL_CODES = new Set(["MANIFEST_INVALID", "UNSUPPORTED", "HTTP_400", "HTTP_415"]);

const MANIFEST_PATH = /\/v2\/.+\/manifests\/[^/]+$/;

/**
 * True when `error` is a registry's refusal of a manifest: HTTP 415 (Unsupported Media Type), or
 * HTTP 400 with `MANIFEST_INVALID`, `UNSUPPORTED` or no error code, answered on a
 * `/v2/…/manifests/…` URL. Decided from the error's status, code and URL (a
 * {@link RegistryError}), never from its message. The registry does not say why it refused the
 * manifest, so call this only for a failed push of a tree in OCI media types: that is when a
 * refusal means the registry does not take OCI types. Authentication failures, missing blobs
 * (`MANIFEST_BLOB_UNKNOWN`), bad digests, 5xx and network errors are not refusals.
 */
export function isOciRefusal(error: unknown): boolean {
  if (!(error instanceof RegistryError)) return false;
  let path: string;
  try {
    path = new URL(error.url).pathname;
  } catch {
    return false;
  }
  if (!MANIFEST_PATH.test(path)) return false;
  if (error.status === 415) return true;
  return error.status === 400 && REFUSAL_CODES.has(error.code ?? "");
}
