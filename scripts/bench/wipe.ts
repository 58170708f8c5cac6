/**
 * `--wipe-after` and `--wipe-before`: the seeded words would slow later
 * searches on scan-based stores (and words left by tests make a size step
 * inexact), so each matrix server concerned is restarted on empty data with
 * `deno task matrix down --wipe <service>` then `up <service>`. Never while
 * anything else uses the matrix.
 *
 * @module
 */
import type { StoreName } from "../../stores/types.ts";
import { SERVICE_OF } from "../matrix/paths.ts";
import { ROOT } from "./stores.ts";

/** Restarts the matrix server of every network store in `stores` on empty data. */
export async function restoreMatrix(stores: StoreName[]): Promise<void> {
  for (const store of stores) {
    if (store === "SQLITE") continue; // its file lived in the run's temporary directory
    const service = SERVICE_OF[store];
    for (const args of [["down", "--wipe", service], ["up", service]]) {
      console.log(`\n$ deno task matrix ${args.join(" ")}`);
      const status = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", `${ROOT}scripts/matrix.ts`, ...args],
        cwd: ROOT,
        stdout: "inherit",
        stderr: "inherit",
      }).spawn().status;
      if (!status.success) console.warn(`!!! deno task matrix ${args.join(" ")} failed`);
    }
  }
}
