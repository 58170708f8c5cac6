/**
 * Outages on the real servers: a database that starts after the gateway,
 * and one stopped and restarted while the gateway runs. The gateway is never
 * restarted; the store must serve again on its own.
 *
 * A whole-database outage of a store whose URL lists a cluster's nodes is not
 * made here: stopping one node is not an outage there (the fault suite's
 * node-loss scenarios cover that), so these run for it on the single-node
 * topology, where CI runs this file before the cluster comes up.
 */
import { assertEquals } from "./support/assert.ts";
import { storeConfig, storeTest } from "./support/env.ts";
import { splitNodes } from "../stores/settings.ts";
import { TestGateway, uniqueTag } from "./support/gateway.ts";
import { eventually, matrix } from "./support/matrix.ts";
import { type NetworkStoreName, STORE_NAMES } from "../stores/types.ts";

const LIST =
  `query($store: Store!, $search: String) { words(store: $store, search: $search) { id } }`;
const ADD = `mutation($store: Store!, $word: String!) {
  addWord(store: $store, word: $word, definition: "survived an outage") { id }
}`;

for (const store of STORE_NAMES) {
  if (store === "SQLITE" || splitNodes(storeConfig(store)?.url ?? "").length > 1) continue;
  const network = store as NetworkStoreName;
  storeTest(
    store,
    "a database that starts after the gateway, then restarts under it, is served again without restarting the gateway",
    async (config) => {
      await matrix("down", network);
      const g = new TestGateway({ [store]: config });
      try {
        const early = await g.exec(LIST, { store });
        assertEquals(early.errors?.[0]?.extensions?.code, "STORE_UNAVAILABLE");

        await matrix("up", network);
        const tag = uniqueTag();
        const recovered = await eventually(
          async () => {
            const body = await g.exec(ADD, { store, word: `${tag} first` });
            return !body.errors;
          },
          180_000,
          `${store} after a late start`,
        );
        console.log(`${store}: served ${recovered} ms after its database was ready`);

        await matrix("down", network);
        await eventually(
          async () => {
            const body = await g.exec(LIST, { store });
            return body.errors?.[0]?.extensions?.code === "STORE_UNAVAILABLE";
          },
          30_000,
          `${store} reporting STORE_UNAVAILABLE once stopped`,
        );

        await matrix("up", network);
        const back = await eventually(
          async () => {
            const body = await g.exec(ADD, { store, word: `${tag} second` });
            return !body.errors;
          },
          180_000,
          `${store} after a restart`,
        );
        console.log(`${store}: served again ${back} ms after its database was ready`);

        const listed = await g.exec(LIST, { store, search: tag });
        assertEquals((listed.data?.words as unknown[]).length >= 2, true);
      } finally {
        await g.close();
        await matrix("up", network);
      }
    },
  );
}
