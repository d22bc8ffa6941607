/**
 * Where RUN steps run (`--isolation`), and the sandbox that `chroot` isolation builds around them.
 *
 * - `none` is Kaniko's model: the build root is `/` of the executor's own container and RUN runs
 *   there directly. Outside a container that would build in (and wipe) the host's filesystem, so
 *   {@link checkIsolation} refuses it unless `--force`. {@link detectContainer} follows Kaniko's
 *   `proc.GetContainerRuntime` (cgroup names, `container` env, `/run/systemd/container`,
 *   `/.dockerenv`, `/run/.containerenv`, a Kubernetes service account, OpenVZ and gVisor marks).
 * - `chroot` runs each RUN in new mount, PID, UTS and IPC namespaces (and a network namespace for
 *   `--network=none`) with the stage's private root. Deno has no chroot/setgroups/namespace API,
 *   so the work is done by util-linux and a POSIX shell script ({@link SANDBOX_SCRIPT}) that runs
 *   as PID 1 of the new PID namespace:
 *
 *   `unshare --mount --pid --fork --kill-child --uts --ipc [--net] --propagation private
 *     sh -c SANDBOX_SCRIPT kaniko-run LOG READY HOSTPATH OPS… -- setpriv … unshare --root … -- ARGV`
 *
 *   The script mounts `/proc`, `/dev`, `/sys`, `/etc/resolv.conf`, `/etc/hosts` and the RUN
 *   mounts inside the root, then starts the command as its child and exits with its status. When
 *   PID 1 exits the kernel kills every other process of the namespace (daemons a RUN left behind
 *   die with the step), and when the namespace's last process is gone its mounts go too: nothing
 *   is ever mounted in the host's mount namespace (propagation is private).
 *
 * Every path reaches the script as an argument, never inside its text. The environment of the
 * command is the environment of the whole helper chain (it never appears on a command line, so
 * `ps` cannot show secret values exposed with `--mount=type=secret,env=…`).
 * @module
 */
import { KanikoError } from "../errors.ts";
import type { Isolation } from "../cli/options.ts";

export type { Isolation } from "../cli/options.ts";

/** What {@link detectContainer} and {@link checkIsolation} read; tests replace it. */
export interface HostProbe {
  /** Whether a path exists. */
  exists(path: string): boolean;
  /** A small text file's contents, or undefined when unreadable. */
  read(path: string): string | undefined;
  /** An environment variable of the executor. */
  env(name: string): string | undefined;
}

/** The real host. */
export const HOST_PROBE: HostProbe = {
  exists(path) {
    try {
      Deno.lstatSync(path);
      return true;
    } catch {
      return false;
    }
  },
  read(path) {
    try {
      return Deno.readTextFileSync(path);
    } catch {
      return undefined;
    }
  },
  env(name) {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined;
    }
  },
};

/** Runtime names found in cgroup paths or the `container` variable (Kaniko's list, extended). */
const RUNTIME_MARKS: [RegExp, string][] = [
  [/kubepods/, "kubernetes"],
  [/docker/, "docker"],
  [/libpod|podman/, "podman"],
  [/crio|cri-o/, "cri-o"],
  [/containerd/, "containerd"],
  [/buildkit/, "buildkit"],
  [/\blxc\b|lxc\.payload/, "lxc"],
  [/rkt/, "rkt"],
  [/garden/, "garden"],
  [/actions_job/, "github-actions"],
  [/systemd-nspawn/, "systemd-nspawn"],
  [/oci/, "oci"],
];

function runtimeIn(text: string | undefined): string | undefined {
  if (!text) return undefined;
  for (const [re, name] of RUNTIME_MARKS) if (re.test(text)) return name;
  return undefined;
}

/**
 * The container runtime the executor runs in, or undefined on a plain host (Kaniko's
 * `proc.GetContainerRuntime`: cgroup names of this process, OpenVZ and gVisor marks, the
 * `container` variable, `/run/systemd/container`, then `/run/.containerenv`, `/.dockerenv` and a
 * Kubernetes service account).
 */
export function detectContainer(probe: HostProbe = HOST_PROBE): string | undefined {
  const cgroup = runtimeIn(probe.read("/proc/self/cgroup"));
  if (cgroup) return cgroup;
  if (probe.exists("/proc/vz") && !probe.exists("/proc/bc")) return "openvz";
  if (probe.exists("/__runsc_containers__")) return "gvisor";
  const env = probe.env("container");
  if (env) return runtimeIn(env) ?? env;
  const systemd = probe.read("/run/systemd/container")?.trim();
  if (systemd) return runtimeIn(systemd) ?? systemd;
  if (probe.exists("/run/.containerenv")) return "podman";
  if (probe.exists("/.dockerenv")) return "docker";
  if (probe.exists("/var/run/secrets/kubernetes.io/serviceaccount")) return "kubernetes";
  return undefined;
}

/** Where the executor image keeps its binary (Kaniko's image has `/kaniko/executor` too). */
export const EXECUTOR_MARKER = "/kaniko/executor";

/**
 * The default `--isolation`: `none` (Kaniko's model: the build root is `/`) only in the
 * executor's own container — a container whose `/kaniko/executor` exists — and `chroot`
 * everywhere else. A developer's container (a devcontainer, a CI job image) is a container too,
 * and building into its `/` would overwrite it; there `--isolation=none` must be asked for.
 */
export function defaultIsolation(probe: HostProbe = HOST_PROBE): Isolation {
  return detectContainer(probe) && probe.exists(EXECUTOR_MARKER) ? "none" : "chroot";
}

/** Host programs the sandbox uses, as absolute paths. */
export interface HostTools {
  sh: string;
  unshare: string;
  setpriv: string;
  /** coreutils env: removes what the helper shell adds to the environment (PWD, SHLVL, _). */
  env: string;
  /** PATH for the helpers the script runs (mount, mkdir, mknod, ln, cp, ip). */
  path: string;
}

const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The executor's PATH with the system directories appended (sbin is often missing). */
export function hostPath(probe: HostProbe = HOST_PROBE): string {
  const own = probe.env("PATH") ?? "";
  const dirs = [...own.split(":"), ...SYSTEM_PATH.split(":")].filter((d) => d.startsWith("/"));
  return [...new Set(dirs)].join(":");
}

/** An executable named `name` in `path`, or undefined. */
export function findExecutable(name: string, path: string): string | undefined {
  for (const dir of path.split(":")) {
    if (!dir.startsWith("/")) continue;
    const candidate = `${dir}/${name}`;
    try {
      const info = Deno.statSync(candidate);
      if (info.isFile && ((info.mode ?? 0) & 0o111) !== 0) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

let cachedTools: HostTools | undefined;

/** Locates `sh`, `unshare` and `setpriv` (util-linux) on the host; throws when one is missing. */
export function hostTools(): HostTools {
  if (cachedTools) return cachedTools;
  const path = hostPath();
  const find = (name: string, pkg: string) => {
    const found = findExecutable(name, path);
    if (!found) {
      throw new KanikoError(`RUN needs the host program '${name}', which is not in PATH`, {
        hint: `install ${pkg} in the executor's image or host`,
      });
    }
    return found;
  };
  cachedTools = {
    sh: find("sh", "a POSIX shell"),
    unshare: find("unshare", "util-linux"),
    setpriv: find("setpriv", "util-linux"),
    env: find("env", "coreutils"),
    path,
  };
  // mount(8) is run by the script through PATH; check it here for a clear message.
  find("mount", "util-linux (mount)");
  return cachedTools;
}

/** What {@link checkIsolation} needs from the build options. */
export interface IsolationOptions {
  isolation: Isolation;
  /** `--force`: build in `/` even outside a container. */
  force: boolean;
}

/**
 * Refuses isolation settings that cannot work or would damage the host: `none` outside a
 * container without `--force` (Kaniko's refusal, same words), `chroot` without root, without
 * util-linux, or where new mount and PID namespaces cannot be created.
 */
export function checkIsolation(options: IsolationOptions, probe: HostProbe = HOST_PROBE): void {
  if (options.isolation === "none") {
    if (options.force || detectContainer(probe)) return;
    throw new KanikoError(
      "kaniko should only be run inside of a container, run with the --force flag if you are sure you want to continue",
      { hint: "--isolation=none builds in / and replaces its files; use --isolation=chroot" },
    );
  }
  if (Deno.build.os !== "linux") {
    throw new KanikoError(`--isolation=chroot needs Linux, this is ${Deno.build.os}`);
  }
  if (Deno.uid() !== 0) {
    throw new KanikoError("--isolation=chroot needs root (it creates namespaces and mounts)", {
      hint: "run the executor as root, or in a container with --isolation=none",
    });
  }
  const tools = hostTools();
  const probeRun = new Deno.Command(tools.unshare, {
    args: ["--mount", "--pid", "--fork", "--propagation", "private", tools.sh, "-c", "exit 0"],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).outputSync();
  if (!probeRun.success) {
    const why = new TextDecoder().decode(probeRun.stderr).trim();
    throw new KanikoError(`--isolation=chroot cannot create mount and PID namespaces: ${why}`, {
      hint: "the executor needs CAP_SYS_ADMIN (a privileged container), or use --isolation=none",
    });
  }
}

/**
 * Capabilities a chroot RUN keeps when it runs as root: Docker's default set. Without
 * CAP_SYS_ADMIN it cannot mount, unmount the sandbox's mounts or reconfigure the host.
 */
export const DEFAULT_CAPABILITIES = [
  "chown",
  "dac_override",
  "fowner",
  "fsetid",
  "kill",
  "setgid",
  "setuid",
  "setpcap",
  "net_bind_service",
  "net_raw",
  "sys_chroot",
  "mknod",
  "audit_write",
  "setfcap",
];

/**
 * The sandbox script (POSIX sh, run by the host's shell as PID 1 of the new namespaces).
 *
 * Arguments: `LOG READY HOSTPATH OP… -- COMMAND…`. Setup messages go to LOG; READY is created
 * once setup succeeded (its absence tells the caller that setup failed, and why is in LOG); the
 * helpers run with HOSTPATH, and the command gets the caller's PATH (or none) back. Mounts come
 * in fstab files so that one `mount -a` process does many of them (a process start costs
 * 10–20 ms on small VMs). Operations:
 *
 * | op | args | effect |
 * | --- | --- | --- |
 * | `mount` | FSTAB | `mount -a -T FSTAB`; any failure aborts the step |
 * | `mount?` | FSTAB | the same, failures ignored (masks, devpts, mqueue) |
 * | `overlay` | LOWER UPPER WORK DST | writable view of LOWER whose writes are discarded (a copy in UPPER when WORK is empty or overlayfs fails) |
 * | `mkdir` / `mkfile` | PATH | mount point on a fresh or writable mount |
 * | `hostname` | NAME | hostname of the new UTS namespace |
 * | `lo` | | loopback up (network none) |
 * | `cd` | DIR | working directory of the command (isolation none) |
 */
export const SANDBOX_SCRIPT = String.raw`
log=$1 ready=$2
shift 2
exec 3>&2 2>>"$log"
if [ "${"$"}{PATH+set}" = set ]; then run_path=$PATH; run_path_set=1; else run_path_set=; fi
PATH=$1
shift
die() { printf '%s\n' "$*" >&2; exit 1; }
while [ "$#" -gt 0 ]; do
  op=$1
  shift
  case $op in
  --) break ;;
  mount)
    mount -a -T "$1" || die "cannot mount the file systems of the step"
    shift ;;
  mount\?)
    mount -a -T "$1" 2>/dev/null
    shift ;;
  overlay)
    if [ -n "$3" ] && mount -t overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" overlay "$4" 2>/dev/null; then
      :
    else
      { cp -a -x "$1/." "$2/" && mount --bind "$2" "$4"; } || die "cannot mount a writable copy of $1 on $4"
    fi
    shift 4 ;;
  mkdir)
    mkdir -p "$1" || die "cannot create the mount point $1"
    shift ;;
  mkfile)
    if [ ! -e "$1" ]; then : > "$1" || die "cannot create the mount point $1"; fi
    shift ;;
  hostname)
    printf '%s' "$1" > /proc/sys/kernel/hostname 2>/dev/null
    shift ;;
  lo)
    ip link set lo up 2>/dev/null ;;
  cd)
    cd -P "$1" || die "cannot change to the working directory $1"
    shift ;;
  *) die "unknown sandbox operation $op" ;;
  esac
done
: > "$ready" || die "cannot write $ready"
if [ "$run_path_set" ]; then PATH=$run_path; else unset PATH; fi
exec 2>&3 3>&-
"$@"
exit $?
`;
