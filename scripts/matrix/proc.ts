/**
 * Process helpers for the matrix: run a command to completion, start a server
 * detached from this process (so it outlives `deno task matrix up`) as an
 * unprivileged user, and poll until something is true.
 *
 * @module
 */

/** Runs a command and returns its stdout; throws with stderr when it fails. */
export async function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; user?: string; stdin?: string } = {},
): Promise<string> {
  const [c, a] = opts.user && opts.user !== currentUser()
    ? ["setpriv", [...asUser(opts.user), cmd, ...args]]
    : [cmd, args];
  const child = new Deno.Command(c, {
    args: a,
    cwd: opts.cwd,
    env: opts.env,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await child.output();
  const text = new TextDecoder();
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (exit ${out.code}): ${text.decode(out.stderr).slice(-2000)}`,
    );
  }
  return text.decode(out.stdout);
}

/**
 * Starts `cmd args` in a new session, as `user`, with stdout and stderr
 * appended to `log`, and returns its pid. The process is not a child of this
 * one's lifetime: it keeps running after the runner exits.
 */
export async function spawnDetached(
  cmd: string,
  args: string[],
  opts: { user: string; log: string; cwd?: string; env?: Record<string, string> },
): Promise<number> {
  const pidFile = await Deno.makeTempFile({ prefix: "matrix-pid-" });
  const envArgs = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
  const target = [
    ...(opts.user !== currentUser() ? ["setpriv", ...asUser(opts.user)] : []),
    "env",
    ...envArgs,
    cmd,
    ...args,
  ];
  const script = `echo $$ > ${q(pidFile)}; exec ${target.map(q).join(" ")} >> ${
    q(opts.log)
  } 2>&1 < /dev/null`;
  await run("setsid", ["-f", "sh", "-c", script], { cwd: opts.cwd });
  const pid = await waitFor(async () => {
    const t = (await Deno.readTextFile(pidFile)).trim();
    return t ? Number(t) : undefined;
  }, 5_000);
  await Deno.remove(pidFile);
  return pid;
}

/** Polls `probe` every `intervalMs` until it returns a value other than false/undefined, or throws after `timeoutMs`. */
export async function waitFor<T>(
  probe: () => Promise<T | false | undefined>,
  timeoutMs: number,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== false && v !== undefined) return v as T;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms${last ? `: ${last}` : ""}`);
}

/** True when a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

/** The user this process runs as. */
export function currentUser(): string {
  return Deno.env.get("USER") ?? (Deno.uid() === 0 ? "root" : String(Deno.uid()));
}

function asUser(user: string): string[] {
  return [`--reuid=${user}`, `--regid=${user}`, "--init-groups"];
}

function q(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}
