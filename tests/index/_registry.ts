/**
 * Helpers of the index and ci-driver tests: a registry session reaching every test-bed registry,
 * a sink that records what a copy wrote, and skopeo's view of a pushed tree.
 * @module
 */
import type {
  BlobSource,
  ImageSink,
  PutBlobOptions,
  PutBlobResult,
  RawManifest,
} from "../../lib/oci/content.ts";
import type { Descriptor } from "../../lib/oci/schemas.ts";
import { defaultRegistryOptions } from "../../lib/registry/options.ts";
import { RegistrySession } from "../../lib/registry/session.ts";
import { type RegistryRef, skopeo, type TestbedEnv } from "../_testbed.ts";

/** A session with the test bed's credentials, CA and plain-HTTP hosts. */
export function testbedSession(env: TestbedEnv): RegistrySession {
  const regs = Object.values(env.registries);
  return new RegistrySession({
    ...defaultRegistryOptions(),
    dockerConfigDir: env.dockerConfigDir,
    insecureRegistries: regs.filter((r) => !r.tls).map((r) => r.host),
    registryCertificates: Object.fromEntries(
      regs.filter((r) => r.tls).map((r) => [r.host, env.ca]),
    ),
  });
}

/** A fresh repository name. */
export function freshRepo(prefix: string): string {
  return `${prefix}/${crypto.randomUUID().slice(0, 8)}`;
}

/** A sink passing everything to `inner` and recording manifest writes and blob results. */
export class RecordingSink implements ImageSink {
  /** Manifests written, in order: digest and tag. */
  readonly manifests: { digest: string; mediaType: string; tag?: string }[] = [];
  /** Blob digest → what each `putBlob` did. */
  readonly blobs = new Map<string, PutBlobResult[]>();

  constructor(readonly inner: ImageSink) {}

  get name(): string {
    return this.inner.name;
  }

  hasBlob(desc: Descriptor): Promise<boolean> {
    return this.inner.hasBlob(desc);
  }

  async putBlob(
    desc: Descriptor,
    source: BlobSource,
    options?: PutBlobOptions,
  ): Promise<PutBlobResult> {
    const result = await this.inner.putBlob(desc, source, options);
    this.blobs.set(desc.digest, [...this.blobs.get(desc.digest) ?? [], result]);
    return result;
  }

  hasManifest(desc: Descriptor): Promise<boolean> {
    return this.inner.hasManifest(desc);
  }

  async putManifest(manifest: RawManifest, tag?: string): Promise<void> {
    await this.inner.putManifest(manifest, tag);
    this.manifests.push({ digest: manifest.digest, mediaType: manifest.mediaType, tag });
  }
}

/** `skopeo inspect --raw` of a reference: the exact bytes the registry serves. */
export async function skopeoRaw(
  env: TestbedEnv,
  registry: RegistryRef,
  reference: string,
): Promise<string> {
  const r = await skopeo(["inspect", "--raw", `docker://${reference}`], { env, variant: registry });
  if (r.code !== 0) throw new Error(`skopeo inspect --raw ${reference}: ${r.stderr}`);
  return r.stdout;
}

/** `skopeo inspect` of one platform of a reference (`--override-arch`/`--override-variant`). */
export async function skopeoPlatform(
  env: TestbedEnv,
  registry: RegistryRef,
  reference: string,
  arch: string,
  variant?: string,
): Promise<
  {
    Digest: string;
    Architecture: string;
    Os: string;
    Variant?: string;
    Layers: string[];
    Labels: Record<string, string> | null;
  }
> {
  const flags = ["--override-os", "linux", "--override-arch", arch];
  if (variant) flags.push("--override-variant", variant);
  const r = await skopeo(["inspect", ...flags, `docker://${reference}`], {
    env,
    variant: registry,
  });
  if (r.code !== 0) throw new Error(`skopeo inspect --override-arch ${arch}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}
