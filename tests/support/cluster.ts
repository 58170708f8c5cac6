/**
 * Tests of the matrix's cluster topology (`deno task matrix up` with the
 * cluster nodes named): they run only when the store's URL lists three
 * nodes, are skipped loudly otherwise, and fail in CI, where a run of
 * `deno task test:cluster` means the cluster must be there.
 *
 * @module
 */
import type { StoreConfig, StoreName } from "../../stores/types.ts";
import { requiredTest, storeConfig } from "./env.ts";

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
  requiredTest(`${store} cluster: ${name}`, {
    missing: urls ? undefined : `${store}_URL does not list ${CLUSTER_NODES} nodes`,
    start: "deno task matrix up --cluster",
    group: `${store} cluster tests`,
  }, () => fn(storeConfig(store)!, urls!));
}
