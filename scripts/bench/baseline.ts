/**
 * The baseline the gateway is measured against: a bare `Deno.serve` handler
 * that calls the same store module's `list` and returns JSON in the shape of
 * the gateway's answer, with no GraphQL, no validation and no timeouts.
 * Run by the benchmark as its own process:
 *
 *     deno run --allow-all scripts/bench/baseline.ts SQLITE,POSTGRESQL
 *
 * It opens every named store (configured from the environment, as the
 * gateway is), then prints `Listening on http://127.0.0.1:<port>/` and serves
 * `GET /words?store=<STORE>&limit=<n>&offset=<n>`. SIGTERM closes the stores.
 *
 * @module
 */
import type { StoreName, WordStore } from "../../stores/types.ts";
import { openStore, storeConfigs } from "./stores.ts";

const OPEN_DEADLINE_MS = 60_000;

async function openWithRetry(store: StoreName): Promise<WordStore> {
  const env = Deno.env.toObject();
  const config = storeConfigs(env, env.SQLITE_PATH ?? ":memory:")[store];
  if (!config) throw new Error(`${store} is not configured`);
  const deadline = Date.now() + OPEN_DEADLINE_MS;
  for (;;) {
    try {
      return await openStore(store, config);
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`${store}: cannot open (${(e as Error).name})`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function main(arg: string | undefined): Promise<void> {
  const names = (arg ?? "SQLITE").split(",") as StoreName[];
  const stores = new Map<string, WordStore>();
  for (const name of names) stores.set(name, await openWithRetry(name));

  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => console.log(`Listening on http://127.0.0.1:${port}/`),
  }, async (req) => {
    const url = new URL(req.url);
    const name = url.searchParams.get("store") ?? "";
    const store = stores.get(name);
    if (url.pathname !== "/words" || !store) return new Response("not found", { status: 404 });
    try {
      const records = await store.list({
        limit: Number(url.searchParams.get("limit") ?? 100),
        offset: Number(url.searchParams.get("offset") ?? 0),
      });
      const words = records.map((r) => ({
        id: r.id,
        word: r.word,
        definition: r.definition,
        store: name,
        createdAt: r.createdAt,
      }));
      return Response.json({ data: { words } });
    } catch (e) {
      return Response.json({ error: (e as Error).name }, { status: 503 });
    }
  });

  Deno.addSignalListener("SIGTERM", async () => {
    await server.shutdown();
    await Promise.all([...stores.values()].map((s) => s.close()));
    Deno.exit(0);
  });
}

if (import.meta.main) await main(Deno.args[0]);
