/**
 * `tags REPO`: lists a repository's tags, one per line, following pagination.
 * @module
 */
import type { RegistryOptions } from "../registry/options.ts";
import { parseRepository } from "../registry/reference.ts";
import { RegistrySession } from "../registry/session.ts";

/** Runs the tags command. */
export async function tagsCommand(repo: string, options: { registry: RegistryOptions }) {
  const ref = parseRepository(repo);
  const session = new RegistrySession(options.registry);
  try {
    const tags = await session.client(ref.registry, "pull").listTags(ref.repository);
    if (tags.length) console.log(tags.join("\n"));
  } finally {
    session.close();
  }
}
