/**
 * GraphQL over WebSocket (graphql-ws) on the real gateway with SQLite:
 * READ_TOKEN in connection_init, a subscription's events, the Origin check.
 */
import { createClient } from "graphql-ws";
import { assertEquals, assertOk } from "./support/assert.ts";
import { startServer, uniqueTag } from "./support/gateway.ts";
import { ADD } from "./support/words.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const WRITE = "w-token-0123456789ab";
const READ = "r-token-0123456789ab";
const WORD_EVENTS = `subscription { wordEvents(store: SQLITE) { kind word { word } } }`;

/** Opens a graphql-ws client; resolves with its close code, or "connected". */
function connect(url: string, authorization?: string) {
  const client = createClient({
    url: url.replace(/^http/, "ws") + "/graphql",
    connectionParams: authorization ? { authorization } : undefined,
    retryAttempts: 0,
    lazy: false,
    onNonLazyError: () => {}, // the close code is what the test checks
  });
  const state = new Promise<number | "connected">((resolve) => {
    client.on("connected", () => resolve("connected"));
    client.on("closed", (e) => resolve((e as CloseEvent).code));
  });
  return { client, state };
}

Deno.test({
  name: "WebSocket: READ_TOKEN in connection_init; a subscription gets the writes",
  ...opts,
  fn: async () => {
    const server = await startServer({ WRITE_TOKEN: WRITE, READ_TOKEN: READ });
    try {
      const anonymous = connect(server.url);
      assertEquals(await anonymous.state, 4403, server.output().slice(-3000));
      await anonymous.client.dispose();
      const wrong = connect(server.url, "Bearer not-the-token-at-all");
      assertEquals(await wrong.state, 4403);
      await wrong.client.dispose();

      const { client, state } = connect(server.url, `Bearer ${READ}`);
      assertEquals(await state, "connected");
      const got: unknown[] = [];
      // settles with the close event once the gateway ends the socket
      const ended = new Promise<unknown>((resolve) => {
        client.subscribe({ query: WORD_EVENTS }, {
          next: (v) => got.push(v),
          error: resolve,
          complete: () => resolve("complete"),
        });
      });
      await new Promise((r) => setTimeout(r, 200)); // subscribed
      const word = uniqueTag();
      const res = await fetch(`${server.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${WRITE}` },
        body: JSON.stringify({ query: ADD, variables: { store: "SQLITE", word, definition: "d" } }),
      });
      assertEquals(res.status, 200);
      await res.body?.cancel();
      const deadline = Date.now() + 5000;
      while (got.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assertEquals(got, [{ data: { wordEvents: { kind: "ADDED", word: { word } } } }]);
      // a mutation over the socket with only the read token is refused
      const refused = await new Promise<unknown>((resolve) => {
        client.subscribe(
          { query: ADD, variables: { store: "SQLITE", word: "x", definition: "y" } },
          {
            next: resolve,
            error: resolve,
            complete: () => {},
          },
        );
      });
      assertOk(JSON.stringify(refused).includes("UNAUTHENTICATED"), JSON.stringify(refused));
      // SIGTERM closes the socket
      const status = await server.stop();
      assertOk(status.success, server.output().slice(-2000));
      const end = await ended;
      assertOk(end === "complete" || (end as CloseEvent).code === 1001, String(end));
      await client.dispose();
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "WebSocket: a foreign Origin is refused 403; the gateway's own is upgraded",
  ...opts,
  fn: async () => {
    const server = await startServer({ CORS_ORIGINS: "https://app.example.com" });
    try {
      const opened = (origin: string) =>
        new Promise<boolean>((resolve) => {
          // Deno's WebSocket takes headers, so a test can send any Origin.
          const ws = new WebSocket(`${server.url.replace(/^http/, "ws")}/graphql`, {
            protocols: ["graphql-transport-ws"],
            headers: { origin },
          } as unknown as string[]);
          ws.onopen = () => {
            ws.close();
            resolve(true);
          };
          ws.onerror = () => resolve(false);
        });
      assertEquals(await opened("https://evil.example.com"), false);
      assertEquals(await opened("https://app.example.com"), true);
      assertEquals(await opened(server.url), true);
    } finally {
      await server.stop();
    }
  },
});
