/**
 * `/metrics` on the real server process with only the embedded SQLite
 * store: what a scrape shows after real traffic, and nothing of the words
 * or searches; `METRICS=false`; `METRICS_TOKEN`, apart from the GraphQL
 * tokens.
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import { startServer, uniqueTag } from "./support/gateway.ts";
import { samples, valueOf } from "./support/prometheus.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function gql(url: string, query: string, variables = {}, token?: string) {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${url}/graphql`, {
    method: "POST",
    headers,
    body: JSON.stringify({ query, variables }),
  });
  return await res.json();
}

async function scrape(url: string, token?: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${url}/metrics`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  return { status: res.status, text: await res.text() };
}

const ADD = `mutation($w: String!, $d: String!) {
  addWord(store: SQLITE, word: $w, definition: $d) { id }
}`;

Deno.test(
  "a scrape after an addWord and a search counts the SQLite add, times it, shows memory and the mutation, and no word or search term",
  opts,
  async () => {
    const server = await startServer();
    try {
      const tag = uniqueTag();
      const word = `${tag}-zebra`;
      const definition = `${tag}-striped horse`;
      const search = `${tag}-STRIPED`;
      const added = await gql(server.url, ADD, { w: word, d: definition });
      assertOk(added.data?.addWord?.id, JSON.stringify(added));
      const found = await gql(
        server.url,
        `query($s: String) { words(store: SQLITE, search: $s) { id } }`,
        { s: search },
      );
      assertEquals(found.data?.words, [{ id: added.data.addWord.id }]);

      const { status, text } = await scrape(server.url);
      assertEquals(status, 200);
      const sqlite = (operation: string) =>
        valueOf(text, "grand_tour_store_calls_total", {
          store: "SQLITE",
          operation,
          outcome: "ok",
        });
      assertEquals(sqlite("add"), 1);
      assertEquals(sqlite("list"), 1);
      assertEquals(
        valueOf(text, "grand_tour_store_call_duration_seconds_count", {
          store: "SQLITE",
          operation: "add",
        }),
        1,
      );
      assertOk(valueOf(text, "process_resident_memory_bytes")! > 10_000_000, "resident memory");
      assertOk(valueOf(text, "grand_tour_event_loop_delay_seconds_count")! > 0, "loop samples");
      assertEquals(
        valueOf(text, "grand_tour_graphql_operations_total", { type: "mutation", outcome: "ok" }),
        1,
      );
      assertEquals(valueOf(text, "grand_tour_store_healthy", { store: "SQLITE" }), 1);
      assertEquals(valueOf(text, "grand_tour_store_connected", { store: "SQLITE" }), 1);

      for (
        const secret of [tag, word, "zebra", "striped", search.toLowerCase(), added.data.addWord.id]
      ) {
        assertOk(!text.toLowerCase().includes(secret.toLowerCase()), `the scrape shows ${secret}`);
      }
      assertOk(!text.includes("127.0.0.1"), "no client address");
      const labels = new Set(samples(text).flatMap((s) => Object.keys(s.labels)));
      assertEquals(
        [...labels].sort(),
        ["kind", "le", "operation", "outcome", "store", "type"],
        "only low-cardinality labels",
      );
    } finally {
      await server.stop();
    }
  },
);

Deno.test("with METRICS=false, /metrics answers 404", opts, async () => {
  const server = await startServer({ METRICS: "false" });
  try {
    const { status } = await scrape(server.url);
    assertEquals(status, 404);
  } finally {
    await server.stop();
  }
});

Deno.test(
  "METRICS_TOKEN refuses a scrape without it or with another token, the write token included, and opens no writes",
  opts,
  async () => {
    const metricsToken = "metrics-0123456789abcdef";
    const writeToken = "write-0123456789abcdef";
    const server = await startServer({ METRICS_TOKEN: metricsToken, WRITE_TOKEN: writeToken });
    try {
      const without = await fetch(`${server.url}/metrics`);
      assertEquals(without.status, 401);
      assertOk(/^Bearer /.test(without.headers.get("www-authenticate") ?? ""));
      await without.body?.cancel();
      for (const wrong of ["metrics-0123456789abcdeX", writeToken]) {
        const { status, text } = await scrape(server.url, wrong);
        assertEquals(status, 401);
        assertOk(!text.includes("grand_tour_"), "nothing of the scrape");
      }
      const right = await scrape(server.url, metricsToken);
      assertEquals(right.status, 200);
      assertOk(valueOf(right.text, "grand_tour_store_healthy", { store: "SQLITE" }) === 1);
      // the metrics token is no write token
      const refused = await gql(server.url, ADD, { w: "w", d: "d" }, metricsToken);
      assertEquals(refused.errors?.[0]?.extensions?.code, "UNAUTHENTICATED");
    } finally {
      await server.stop();
    }
  },
);
