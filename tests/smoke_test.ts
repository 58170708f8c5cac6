/**
 * The smoke test: the real start command against whatever topology the
 * matrix runs (CI runs it once on the single-node default before bringing up
 * the cluster, and again in the main suite on the cluster): every configured
 * store is ready, and a word goes through its life (add, list, edit, delete)
 * over HTTP. Each store's node lines in `/readyz` are printed.
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import { IN_CI, testEnv } from "./support/env.ts";
import { startServer, uniqueTag } from "./support/gateway.ts";
import { ADD, DELETE, LIST, UPDATE } from "./support/words.ts";
import { waitForStores } from "../scripts/server_process.ts";
import { STORE_NAMES, type StoreName } from "../stores/types.ts";

/** The stores' variables as the matrix wrote them, for the gateway's own environment. */
function storeEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(testEnv).filter(([k]) =>
      /^[A-Z]+_(URL|READ_URL|CA_CERT|REPLICATION_FACTOR|DATACENTER)$/.test(k) &&
      !k.startsWith("MATRIX_")
    ),
  );
}

Deno.test({
  name: "the real gateway serves a word's whole life on every configured store",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const env = storeEnv();
    const stores: StoreName[] = STORE_NAMES.filter((s) => s === "SQLITE" || env[`${s}_URL`]);
    if (IN_CI) assertEquals(stores.length, STORE_NAMES.length, "CI requires every store");
    const dir = await Deno.makeTempDir({ prefix: "gateway-smoke-" });
    const server = await startServer({ ...env, RABBITMQ_VIEW_PATH: `${dir}/view.db` }, dir);
    try {
      const unhealthy = await waitForStores(server.url, stores, 120_000);
      assertEquals([...unhealthy.keys()], [], JSON.stringify([...unhealthy]));
      const ready = await fetch(`${server.url}/readyz`);
      const body = await ready.json() as {
        stores: { store: string; nodes?: { role: string; healthy: boolean }[] }[];
      };
      assertEquals(ready.status, 200);
      for (const s of body.stores.filter((s) => s.nodes)) {
        console.log(`${s.store}: ${s.nodes!.map((n) => `${n.role} ${n.healthy}`).join(", ")}`);
      }
      const gql = async (query: string, variables: Record<string, unknown>) => {
        const res = await fetch(`${server.url}/graphql`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ query, variables }),
        });
        const out = await res.json();
        assertEquals(out.errors, undefined, JSON.stringify(out.errors));
        return out.data;
      };
      for (const store of stores) {
        const tag = uniqueTag();
        const { addWord } = await gql(ADD, { store, word: tag, definition: "smoke" });
        const listed = (await gql(LIST, { store, search: tag })).words;
        assertEquals(listed.map((w: { id: string }) => w.id), [addWord.id], store);
        const { updateWord } = await gql(UPDATE, { store, id: addWord.id, definition: "edited" });
        assertEquals(updateWord.definition, "edited", store);
        assertEquals((await gql(LIST, { store, search: tag })).words[0].definition, "edited");
        await gql(DELETE, { store, id: addWord.id });
        assertEquals((await gql(LIST, { store, search: tag })).words, [], store);
      }
    } finally {
      const status = await server.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      assertOk(status.success, server.output().slice(-2000));
    }
  },
});
