/**
 * buildah for the build benchmark: a private store (`--root`/`--runroot` in a temp dir, driver
 * `overlay` or `vfs`) that holds the base image, pulled once before the timed runs; builds
 * (`bud --isolation chroot`, no `--layers`: one layer for all instructions, nothing cached) and
 * pushes (`push --tls-verify=false`); and cleanup (images removed, the driver's mounts undone,
 * the store deleted).
 * @module
 */
import { join } from "node:path";
import { run } from "../testbed/proc.ts";
import { type Timed, timed } from "../_bench_measure.ts";

export const BUILDAH = "/usr/bin/buildah";

/** A private buildah store. */
export class BuildahStore implements AsyncDisposable {
  readonly dir: string;
  readonly driver: string;

  private constructor(dir: string, driver: string) {
    this.dir = dir;
    this.driver = driver;
  }

  /** Makes an empty store in a temp dir (next to ours: same filesystem). */
  static async create(driver: string): Promise<BuildahStore> {
    const dir = await Deno.makeTempDir({ prefix: "bench-buildah-" });
    return new BuildahStore(dir, driver);
  }

  /** Global flags: the store and its driver. */
  get flags(): string[] {
    return [
      "--root",
      join(this.dir, "root"),
      "--runroot",
      join(this.dir, "runroot"),
      "--storage-driver",
      this.driver,
    ];
  }

  /** Pulls `ref` (plain HTTP) into the store. */
  async pull(ref: string): Promise<Timed> {
    return await timed([BUILDAH, ...this.flags, "pull", "-q", "--tls-verify=false", ref]);
  }

  /** `buildah bud --isolation chroot -f DOCKERFILE -t REF CTX` (quiet). */
  async bud(ctx: string, dockerfile: string, ref: string): Promise<Timed> {
    return await timed([
      BUILDAH,
      ...this.flags,
      "bud",
      "-q",
      "--isolation",
      "chroot",
      "--tls-verify=false",
      "-f",
      dockerfile,
      "-t",
      ref,
      ctx,
    ]);
  }

  /** `buildah push --tls-verify=false REF` (to the registry the name says). */
  async push(ref: string): Promise<Timed> {
    return await timed([BUILDAH, ...this.flags, "push", "-q", "--tls-verify=false", ref]);
  }

  /** Removes an image from the store (untimed housekeeping between runs). */
  async rmi(ref: string): Promise<void> {
    await run(BUILDAH, [...this.flags, "rmi", "-f", ref], { allowFail: true });
  }

  /** Removes every image and container, undoes the driver's mounts and deletes the store. */
  async destroy(): Promise<void> {
    await run(BUILDAH, [...this.flags, "rm", "--all"], { allowFail: true });
    await run(BUILDAH, [...this.flags, "rmi", "--all", "-f"], { allowFail: true });
    for (const m of mountsUnder(this.dir)) {
      await run("umount", ["-l", m], { allowFail: true });
    }
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }
}

/** Mount points at or under `dir`, deepest first. */
function mountsUnder(dir: string): string[] {
  let info = "";
  try {
    info = Deno.readTextFileSync("/proc/self/mountinfo");
  } catch {
    return [];
  }
  return info.split("\n")
    .map((line) => line.split(" ")[4])
    .filter((p): p is string => !!p)
    .map((p) => p.replace(/\\(\d{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(dir + "/"))
    .sort((a, b) => b.length - a.length);
}

/** buildah's version line. */
export async function buildahVersion(): Promise<string> {
  return (await run(BUILDAH, ["--version"])).stdout.trim();
}
