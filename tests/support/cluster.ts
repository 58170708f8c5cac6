/**
 * Tests of the matrix's cluster topology (`deno task matrix up` with the
 * cluster nodes named): they run only when the store's URL lists three
 * nodes, are skipped loudly otherwise, and fail in CI, where a run of
 * `deno task test:cluster` means the cluster must be there.
 *
 * @module
 */
import type { StoreConfig, StoreName } from "../../stores/types.ts";
import { IN_CI, storeConfig } from "./env.ts";

/** Nodes of every cluster of the matrix's cluster topology. */
export const CLUSTER_NODES = 3;

/** The store's URLs, when its configuration lists a whole cluster. */
export function clusterUrls(store: StoreName): string[] | undefined {
  const urls = storeConfig(store)?.url.split(",").map((u) => u.trim()).filter(Boolean);
  return urls && urls.length >= CLUSTER_NODES ? urls : undefined;
}

/** Registers a test that needs `store`'s three-node cluster. */
export function clusterTest(
  store: StoreName,
  name: string,
  fn: (config: StoreConfig, urls: string[]) => Promise<void>,
): void {
  const urls = clusterUrls(store);
  const fullName = `${store} cluster: ${name}`;
  if (!urls && !IN_CI) {
    console.warn(
      `\n!!! SKIPPING ${fullName}: ${store}_URL does not list ${CLUSTER_NODES} nodes. Start the` +
        ` cluster (deno task matrix up <service> <service>-2 <service>-3). In CI this fails.\n`,
    );
    Deno.test({ name: fullName, ignore: true, fn: () => {} });
    return;
  }
  Deno.test({
    name: fullName,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      if (!urls) {
        throw new Error(`${store}_URL must list ${CLUSTER_NODES} nodes in CI (cluster topology)`);
      }
      await fn(storeConfig(store)!, urls);
    },
  });
}
