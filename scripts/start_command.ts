/**
 * The gateway's command line exactly as `deno task start` runs it (read from
 * `deno.json`), for the tests and the benchmark that start the real gateway:
 * they then measure it with the same permissions and V8 flags users get.
 *
 * @module
 */

const ROOT = new URL("../", import.meta.url);

/** `deno` arguments of the `start` task, with `main.ts` as an absolute path. */
export function startArgs(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(new URL("deno.json", ROOT)));
  const task: unknown = config?.tasks?.start;
  const words = typeof task === "string" ? task.trim().split(/\s+/) : [];
  if (words[0] !== "deno" || words.at(-1) !== "main.ts") {
    throw new Error(`deno.json: the start task is not "deno run … main.ts": ${String(task)}`);
  }
  return [...words.slice(1, -1), new URL("main.ts", ROOT).pathname];
}
