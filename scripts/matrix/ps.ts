/**
 * Process-table helpers for the matrix runner, read from /proc: the process
 * tree of a server (children and everything in its session, since servers
 * such as RabbitMQ fork), its resident memory, the process listening on a
 * port, and stopping a whole tree.
 *
 * @module
 */

interface Proc {
  pid: number;
  ppid: number;
  sid: number;
  uid: number;
  state: string;
}

function readProc(pid: number): Proc | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // "pid (comm) state ppid pgrp session ..."; comm may contain spaces and parentheses.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const uid = Number(
      /^Uid:\s+(\d+)/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`))?.[1] ?? -1,
    );
    return { pid, state: f[0], ppid: Number(f[1]), sid: Number(f[3]), uid };
  } catch {
    return undefined;
  }
}

function listProcs(): Proc[] {
  const out: Proc[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const p = readProc(Number(e.name));
    if (p && p.state !== "Z") out.push(p);
  }
  return out;
}

/** True when `pid` exists and is not a zombie. */
export function running(pid: number): boolean {
  const p = readProc(pid);
  return p !== undefined && p.state !== "Z";
}

/**
 * The live processes that belong to the server started as `pid`: itself, its
 * descendants, and (when it leads a session, as `spawnDetached` makes it) every
 * process of that session, including orphans whose parent already exited.
 */
export function treeOf(pid: number): number[] {
  const procs = listProcs();
  const set = new Set<number>();
  // Only a session leader's pid can be a session id, so this also finds the
  // session's survivors after the leader itself has exited.
  for (const p of procs) if (p.pid === pid || p.sid === pid) set.add(p.pid);
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of procs) {
      if (!set.has(p.pid) && set.has(p.ppid)) {
        set.add(p.pid);
        grew = true;
      }
    }
  }
  return [...set];
}

/** Live processes owned by `uid`. */
export function processesOf(uid: number): number[] {
  return listProcs().filter((p) => p.uid === uid).map((p) => p.pid);
}

/** True when `pid` works in or names `dir` (its cwd is under it, or its command line mentions it). */
export function refersTo(pid: number, dir: string): boolean {
  const base = dir.replace(/\/+$/, "");
  try {
    const cwd = Deno.readLinkSync(`/proc/${pid}/cwd`);
    if (cwd === base || cwd.startsWith(`${base}/`)) return true;
  } catch {
    // gone, or not ours to read
  }
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes(base);
  } catch {
    return false;
  }
}

/** Sum of VmRSS over `pids`, in MiB. */
export function rssMiB(pids: number[]): number {
  let kib = 0;
  for (const pid of pids) {
    try {
      const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
      kib += Number(m?.[1] ?? 0);
    } catch {
      // exited meanwhile
    }
  }
  return kib / 1024;
}

/**
 * The pid to manage for whatever listens on TCP `port` (IPv4 or IPv6): the
 * leader of the listener's session when that is a detached server session,
 * else the listener itself. Undefined when nothing listens.
 */
export function listenerPid(port: number): number | undefined {
  const inodes = new Set<string>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = Deno.readTextFileSync(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== "0A") continue; // 0A = LISTEN
      if (parseInt(f[1].split(":")[1], 16) === port) inodes.add(f[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const p of listProcs()) {
    let fds: Deno.DirEntry[] = [];
    try {
      fds = [...Deno.readDirSync(`/proc/${p.pid}/fd`)];
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link = "";
      try {
        link = Deno.readLinkSync(`/proc/${p.pid}/fd/${fd.name}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(m[1])) {
        const leader = readProc(p.sid);
        return p.sid > 1 && leader && leader.uid === p.uid ? p.sid : p.pid;
      }
    }
  }
  return undefined;
}

function signal(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch {
    // already gone
  }
}

/**
 * Stops the server started as `pid` and everything in its tree: `sig` to the
 * leader (so it shuts down in order), SIGTERM to any stragglers once the
 * leader is gone, SIGKILL to whatever is left after `graceMs`. Resolves to
 * "stopped" or "killed".
 */
export async function stopTree(
  pid: number,
  sig: Deno.Signal,
  graceMs: number,
): Promise<"stopped" | "killed"> {
  const members = new Set(treeOf(pid));
  const refresh = () => {
    for (const p of treeOf(pid)) members.add(p);
    for (const p of [...members]) if (!running(p)) members.delete(p);
  };
  signal(pid, sig);
  const deadline = Date.now() + graceMs;
  let strayTermed = false;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    refresh();
    if (members.size === 0) return "stopped";
    if (!running(pid) && !strayTermed) {
      for (const p of members) signal(p, "SIGTERM");
      strayTermed = true;
    }
  }
  refresh();
  for (const p of members) signal(p, "SIGKILL");
  for (let i = 0; i < 25 && [...members].some(running); i++) {
    await new Promise((r) => setTimeout(r, 200));
  }
  return "killed";
}
