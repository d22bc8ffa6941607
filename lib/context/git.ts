/**
 * Git contexts through the system `git`: a fresh repository, a shallow fetch of the one ref asked
 * for (branch, tag, full ref such as `refs/pull/1/head`, or a commit hash; the default branch
 * when none), a detached checkout, optional submodules. A commit hash that the server will not
 * serve shallowly is fetched with the full history. Kaniko's `#REF#COMMIT` and `--git branch=`
 * work as in Kaniko; the `.git` directory is kept, as Kaniko keeps it.
 *
 * Credentials (`GIT_TOKEN`, or `GIT_USERNAME`/`GIT_PASSWORD`, else those in the URL) are handed
 * to git by a `GIT_ASKPASS` helper that reads them from the environment of the git process only:
 * they never appear in a URL, a command line, `.git/config` or a message.
 * @module
 */
import { KanikoError } from "../errors.ts";
import { addSecret, log, redact } from "../log.ts";
import type { Credentials, GitSource } from "./source.ts";

/** Kaniko's `--git` options. */
export interface GitCloneOptions {
  /** Branch (or tag) to clone, overriding the URL's ref; empty for none. */
  branch?: string;
  /** Clone only that branch (our fetch always takes one ref; kept for compatibility). */
  singleBranch?: boolean;
  /** Clone submodules too. */
  recurseSubmodules?: boolean;
  /** Do not verify the server's TLS certificate. */
  insecureSkipTls?: boolean;
}

/** What {@link cloneGit} needs besides the source. */
export interface CloneSettings {
  /** Directory to clone into (created). */
  dest: string;
  /** A private scratch directory (for the askpass helper), removed by the caller. */
  scratch: string;
  /** `--git` options. */
  git?: GitCloneOptions;
  /** Environment lookup (default: the process environment). */
  env?: (name: string) => string | undefined;
  /** The context as the user may see it (credentials removed). */
  description: string;
  signal?: AbortSignal;
}

const PULL_METHODS = new Set(["https", "http", "git", "ssh"]);

/**
 * The URL git is given: `git://` contexts use `GIT_PULL_METHOD` (Kaniko: `https` by default, or
 * `http`; here also `git` for the native protocol and `ssh`).
 */
export function cloneUrl(source: GitSource, env: (name: string) => string | undefined): string {
  if (!source.pullMethodDefault) return source.url;
  const wanted = (env("GIT_PULL_METHOD") ?? "").toLowerCase();
  const method = PULL_METHODS.has(wanted) ? wanted : "https";
  return `${method}://${source.url.slice("git://".length)}`;
}

/** Kaniko's credentials: `GIT_TOKEN` (as the user name), else `GIT_USERNAME`/`GIT_PASSWORD`. */
export function gitCredentials(
  source: GitSource,
  env: (name: string) => string | undefined,
): Credentials | undefined {
  const token = env("GIT_TOKEN") ?? "";
  if (token !== "") return { username: token, password: "" };
  const username = env("GIT_USERNAME") ?? "";
  const password = env("GIT_PASSWORD") ?? "";
  if (username !== "" || password !== "") return { username, password };
  return source.urlCredentials;
}

/** Clones `source` into `settings.dest`; returns the checked-out commit. */
export async function cloneGit(source: GitSource, settings: CloneSettings): Promise<string> {
  const env = settings.env ?? ((name: string) => Deno.env.get(name));
  const url = cloneUrl(source, env);
  const credentials = gitCredentials(source, env);
  const git = new GitRunner(settings, credentials);
  await git.setup();
  const dest = settings.dest;
  await git.run(["init", "-q", dest], "git init");
  await git.run(["-C", dest, "remote", "add", "origin", url], "git remote add");

  const branch = settings.git?.branch ?? "";
  let ref = source.ref;
  if (branch !== "") ref = await resolveBranch(git, dest, branch, settings.description);

  const revision = await fetchRef(git, dest, ref, settings.description);
  await git.run(["-C", dest, "checkout", "-q", "--detach", revision], "git checkout");
  if (source.commit) {
    await fetchCommit(git, dest, source.commit, settings.description);
    await git.run(["-C", dest, "checkout", "-q", "--detach", source.commit], "git checkout");
  }
  if (settings.git?.recurseSubmodules) {
    await git.run(
      ["-C", dest, "submodule", "update", "--init", "--recursive", "--depth", "1"],
      "git submodule update",
    );
  }
  const head = (await git.run(["-C", dest, "rev-parse", "HEAD"], "git rev-parse")).trim();
  log.debug("cloned git context", { context: settings.description, commit: head });
  return head;
}

/** Kaniko's `--git branch=X`: the branch `X`, else the tag `X`. */
async function resolveBranch(
  git: GitRunner,
  dest: string,
  branch: string,
  description: string,
): Promise<string> {
  const heads = `refs/heads/${branch}`;
  const tags = `refs/tags/${branch}`;
  const out = await git.run(["-C", dest, "ls-remote", "origin", heads, tags], "git ls-remote");
  const refs = out.split("\n").map((l) => l.split("\t")[1]).filter(Boolean);
  if (refs.includes(heads)) return heads;
  if (refs.includes(tags)) return tags;
  throw new KanikoError(
    `git context ${description}: --git branch=${branch} names no branch or tag of the repository`,
    { hint: "check the branch name" },
  );
}

const FULL_SHA = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/i;
const SHORT_SHA = /^[0-9a-f]{4,63}$/i;

async function fetchRef(
  git: GitRunner,
  dest: string,
  ref: string | undefined,
  description: string,
): Promise<string> {
  const wanted = ref ?? "HEAD";
  const shallow = ["-C", dest, "fetch", "-q", "--depth", "1", "--no-tags", "origin", wanted];
  const first = await git.tryRun(shallow);
  if (first.ok) return "FETCH_HEAD";
  if (ref !== undefined && (FULL_SHA.test(ref) || SHORT_SHA.test(ref))) {
    // The server would not serve the commit by itself: fetch everything and look it up.
    await fetchEverything(git, dest);
    const sha = await git.tryRun(["-C", dest, "rev-parse", "--verify", "-q", `${ref}^{commit}`]);
    if (sha.ok) return sha.stdout.trim();
    throw new KanikoError(
      `git context ${description}: ${
        JSON.stringify(ref)
      } is no branch, tag or commit of the repository`,
      { hint: "check the ref after # (use the full 40-character commit hash)" },
    );
  }
  throw git.failure("git fetch", first.stderr, ref === undefined ? undefined : refHint(ref));
}

async function fetchCommit(git: GitRunner, dest: string, commit: string, description: string) {
  const have = await git.tryRun(["-C", dest, "cat-file", "-e", `${commit}^{commit}`]);
  if (have.ok) return;
  const shallow = await git.tryRun(["-C", dest, "fetch", "-q", "--depth", "1", "origin", commit]);
  if (shallow.ok) return;
  await fetchEverything(git, dest);
  const found = await git.tryRun(["-C", dest, "cat-file", "-e", `${commit}^{commit}`]);
  if (!found.ok) {
    throw new KanikoError(
      `git context ${description}: commit ${commit} is not in the repository`,
      { hint: "check the commit after the second #" },
    );
  }
}

async function fetchEverything(git: GitRunner, dest: string): Promise<void> {
  let shallow = false;
  try {
    shallow = (await Deno.stat(`${dest}/.git/shallow`)).isFile;
  } catch {
    // not shallow
  }
  const args = [
    "-C",
    dest,
    "fetch",
    "-q",
    "--tags",
    "origin",
    "+refs/heads/*:refs/remotes/origin/*",
  ];
  if (shallow) args.splice(4, 0, "--unshallow");
  await git.run(args, "git fetch");
}

function refHint(ref: string): string {
  return `check that ${JSON.stringify(ref)} is a branch, tag or full commit hash of the repository`;
}

/** Runs git with a controlled environment, credentials only through the askpass helper. */
class GitRunner {
  readonly #settings: CloneSettings;
  readonly #credentials?: Credentials;
  #env: Record<string, string> = {};

  constructor(settings: CloneSettings, credentials?: Credentials) {
    this.#settings = settings;
    this.#credentials = credentials;
  }

  async setup(): Promise<void> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(Deno.env.toObject())) {
      if (
        /^GIT_(DIR|WORK_TREE|INDEX_FILE|OBJECT_DIRECTORY|ALTERNATE_OBJECT_DIRECTORIES|NAMESPACE|CEILING_DIRECTORIES|CONFIG_COUNT|CONFIG_KEY_\d+|CONFIG_VALUE_\d+|CONFIG_PARAMETERS)$/
          .test(k)
      ) continue;
      if (/^(GIT_PASSWORD|GIT_TOKEN|GIT_USERNAME)$/.test(k)) continue;
      env[k] = v;
    }
    env.GIT_TERMINAL_PROMPT = "0";
    env.LC_ALL = "C";
    const config: [string, string][] = [
      ["advice.detachedHead", "false"],
      ["init.defaultBranch", "main"],
      ["core.hooksPath", "/dev/null"],
    ];
    if (this.#settings.git?.insecureSkipTls) config.push(["http.sslVerify", "false"]);
    env.GIT_CONFIG_COUNT = String(config.length);
    config.forEach(([k, v], i) => {
      env[`GIT_CONFIG_KEY_${i}`] = k;
      env[`GIT_CONFIG_VALUE_${i}`] = v;
    });
    if (this.#credentials) {
      addSecret(this.#credentials.password);
      // A token travels as the user name (Kaniko's GIT_TOKEN); plain user names are not masked.
      if (this.#credentials.password === "") addSecret(this.#credentials.username);
      const helper = `${this.#settings.scratch}/askpass.sh`;
      await Deno.writeTextFile(
        helper,
        '#!/bin/sh\ncase "$1" in\n  Username*|username*) printf \'%s\\n\' "$KANIKO_GIT_ASKPASS_USERNAME" ;;\n' +
          "  *) printf '%s\\n' \"$KANIKO_GIT_ASKPASS_PASSWORD\" ;;\nesac\n",
        { mode: 0o700 },
      );
      env.GIT_ASKPASS = helper;
      env.SSH_ASKPASS = helper;
      env.KANIKO_GIT_ASKPASS_USERNAME = this.#credentials.username;
      env.KANIKO_GIT_ASKPASS_PASSWORD = this.#credentials.password;
    }
    this.#env = env;
  }

  async tryRun(args: string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
    let out: Deno.CommandOutput;
    try {
      out = await new Deno.Command("git", {
        args,
        env: this.#env,
        clearEnv: true,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        signal: this.#settings.signal,
      }).output();
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new KanikoError(`git context ${this.#settings.description}: git is not installed`, {
          hint: "a git context needs the git command on PATH",
        });
      }
      this.#settings.signal?.throwIfAborted();
      throw e;
    }
    this.#settings.signal?.throwIfAborted();
    const decoder = new TextDecoder();
    const stderr = this.#scrub(decoder.decode(out.stderr));
    log.trace("git", { args: args.join(" "), code: out.code, stderr });
    return { ok: out.success, stdout: decoder.decode(out.stdout), stderr };
  }

  async run(args: string[], what: string): Promise<string> {
    const r = await this.tryRun(args);
    if (!r.ok) throw this.failure(what, r.stderr);
    return r.stdout;
  }

  failure(what: string, stderr: string, hint?: string): KanikoError {
    const lines = stderr.split("\n").map((l) => l.trim()).filter((l) =>
      l !== "" && !l.startsWith("hint:") &&
      !/^Please make sure you have|^and the repository exists/.test(l)
    );
    // git's first fatal line with its neighbours (e.g. ssh's reason before it, errno after it).
    const fatal = lines.findIndex((l) => /^(fatal|error):/.test(l));
    const shown = fatal >= 0 ? lines.slice(Math.max(0, fatal - 1), fatal + 2) : lines.slice(-2);
    const detail = shown.map((l) => l.replace(/^(fatal|error): /, "")).join("; ");
    let advice = "check the repository URL, the ref and your access to it";
    if (/authentication failed|could not read (username|password)|\b40[13]\b/i.test(stderr)) {
      advice = "set GIT_TOKEN, or GIT_USERNAME and GIT_PASSWORD, with access to the repository";
    } else if (
      /unable to connect|could not resolve|connection refused|failed to connect|timed out|unable to access|connection reset/i
        .test(stderr)
    ) {
      advice = this.#settings.description.startsWith("git://")
        ? "check the repository URL and that the server is reachable (git:// contexts are " +
          "fetched over https unless GIT_PULL_METHOD is http or git)"
        : "check the repository URL and that the server is reachable";
    } else if (hint && /couldn't find remote ref|not our ref|no such remote ref/i.test(stderr)) {
      advice = hint;
    }
    return new KanikoError(
      `git context ${this.#settings.description}: ${what} failed${detail ? `: ${detail}` : ""}`,
      { hint: advice },
    );
  }

  /** Removes credentials from git's messages. */
  #scrub(text: string): string {
    let out = text;
    for (const secret of [this.#credentials?.password, this.#credentials?.username]) {
      if (secret && secret.length >= 3) out = out.split(secret).join("***");
    }
    return redact(out);
  }
}
