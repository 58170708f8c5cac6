/**
 * The gateway's command line exactly as `deno task start` runs it (read from
 * `deno.json`), for the tests and the benchmark that start the real gateway:
 * they then measure it with the same permissions and V8 flags users get.
 * The task runs the launcher (server/launch.ts), which starts `main.ts` as
 * its child with the permissions the configuration needs.
 *
 * @module
 */

const ROOT = new URL("../", import.meta.url);

/** The script the start task runs. */
export const START_SCRIPT = "server/launch.ts";

/**
 * `deno` arguments of the `start` task, with the script and the lock file as
 * absolute paths (the tests start it in a temporary working directory).
 */
export function startArgs(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(new URL("deno.json", ROOT)));
  const task: unknown = config?.tasks?.start;
  const words = typeof task === "string" ? task.trim().split(/\s+/) : [];
  if (words[0] !== "deno" || words[1] !== "run" || words.at(-1) !== START_SCRIPT) {
    throw new Error(
      `deno.json: the start task is not "deno run … ${START_SCRIPT}": ${String(task)}`,
    );
  }
  const absolute = (path: string) => new URL(path, ROOT).pathname;
  return [
    ...words.slice(1, -1).map((w) =>
      w.startsWith("--lock=") ? `--lock=${absolute(w.slice(7))}` : w
    ),
    absolute(START_SCRIPT),
  ];
}
