/**
 * Every store's bulk path (`addMany`), straight through its module: a batch
 * is stored whole, in id order, found by search like words added one by one.
 *
 * @module
 */
import { assertEquals } from "../support/assert.ts";
import { storeTest } from "../support/env.ts";
import { uniqueTag } from "../support/gateway.ts";
import { listed } from "../support/records.ts";
import { fold } from "../../stores/fold.ts";
import { newRecord } from "../../stores/records.ts";
import { STORE_NAMES } from "../../stores/types.ts";
import { openStore } from "../../scripts/bench/stores.ts";

for (const name of STORE_NAMES) {
  storeTest(
    name,
    "addMany stores a batch whole, listed in id order and searchable",
    async (config) => {
      const store = await openStore(name, config);
      try {
        const tag = uniqueTag();
        const records = Array.from(
          { length: 1203 },
          (_, i) => newRecord(`${tag} bulk ${i}`, `Straße ${i}`),
        );
        // Two batches, the second out of order: the list is still in id order.
        await store.addMany!(records.slice(0, 1000));
        await store.addMany!(records.slice(1000).reverse());
        const page = (offset: number) => store.list({ search: tag, limit: 1000, offset });
        assertEquals([...await page(0), ...await page(1000)], listed(...records));
        const found = await store.list({ search: fold(`${tag} BULK 1202`), limit: 10, offset: 0 });
        assertEquals(found, listed(records[1202]));
      } finally {
        await store.close();
      }
    },
  );
}
