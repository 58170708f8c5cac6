/**
 * Stopping and starting one real database of the local matrix from a test,
 * through the same `deno task matrix` commands a developer uses.
 *
 * @module
 */
import { SERVICE_OF } from "../../scripts/matrix/paths.ts";
import type { NetworkStoreName } from "../../stores/types.ts";

export { SERVICE_OF };

const MATRIX = new URL("../../scripts/matrix.ts", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;

/** Runs `deno task matrix <command> <service>`; throws with its output when it fails. */
export async function matrix(command: "up" | "down", store: NetworkStoreName) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MATRIX, command, SERVICE_OF[store]],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`matrix ${command} ${SERVICE_OF[store]} failed:\n${text}`);
  return text;
}

/** Polls `probe` until it returns true or `ms` pass; returns the time it took. */
export async function eventually(probe: () => Promise<boolean>, ms: number, what: string) {
  const t0 = Date.now();
  while (!(await probe().catch(() => false))) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return Date.now() - t0;
}
