/**
 * `WORKERS`: several gateways in one process on one port (server/workers.ts),
 * started as `deno task start` starts them. Each request below opens its own
 * connection, so the kernel spreads them over the workers (`SO_REUSEPORT`);
 * what must be one for the whole process holds whichever worker answers.
 *
 * @module
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import { type GraphQLBody, type ServerProcess, startServer, uniqueTag } from "./support/gateway.ts";
import { subscribe } from "./support/sse.ts";
import { freePort } from "../scripts/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Starts a gateway of two workers and waits until both listen. */
async function twoWorkers(env: Record<string, string> = {}): Promise<ServerProcess> {
  const dir = await Deno.makeTempDir({ prefix: "workers-test-" });
  const server = await startServer({
    PORT: String(freePort()),
    WORKERS: "2",
    SQLITE_PATH: `${dir}/words.db`,
    ...env,
  }, dir);
  const both = () =>
    ["(worker 1 of 2)", "(worker 2 of 2)"].every((w) => server.output().includes(w));
  for (let i = 0; i < 100 && !both(); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!both()) {
    await server.stop();
    throw new Error(`the two workers did not both listen within 10 s:\n${server.output()}`);
  }
  return server;
}

/** One request on a connection of its own: its status and body. */
async function onNewConnection(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; text: string }> {
  const client = Deno.createHttpClient({});
  try {
    const res = await fetch(url, { ...init, client });
    return { status: res.status, text: await res.text() };
  } finally {
    client.close();
  }
}

/** `addWord` on SQLite on a connection of its own. */
async function addWord(url: string, word: string): Promise<GraphQLBody> {
  const { text } = await onNewConnection(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      query: 'mutation($w: String!) { addWord(store: SQLITE, word: $w, definition: "d") { id } }',
      variables: { w: word },
    }),
  });
  return JSON.parse(text);
}

Deno.test(
  "two workers serve one port and one SQLite file: every word added is listed",
  opts,
  async () => {
    const server = await twoWorkers();
    try {
      const tag = uniqueTag();
      const words = Array.from({ length: 12 }, (_, i) => `${tag}${i}`);
      for (const w of words) assertOk(!(await addWord(server.url, w)).errors, `add ${w}`);
      const listed: GraphQLBody = await (await fetch(`${server.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: "{ words(store: SQLITE, limit: 100) { word } }" }),
      })).json();
      const got = (listed.data!.words as { word: string }[]).map((w) => w.word).sort();
      assertEquals(got, [...words].sort());
    } finally {
      await server.stop();
    }
  },
);

Deno.test(
  "the rate limit is one budget for the process, whichever worker a write reaches",
  opts,
  async () => {
    const server = await twoWorkers({ RATE_LIMIT_PER_MINUTE: "3" });
    try {
      const tag = uniqueTag();
      const answers = [];
      for (let i = 0; i < 8; i++) answers.push(await addWord(server.url, `${tag}${i}`));
      const refused = answers.filter((a) => a.errors?.[0]?.extensions?.code === "RATE_LIMITED");
      assertEquals(answers.length - refused.length, 3, JSON.stringify(answers));
      assertEquals(refused.length, 5);
    } finally {
      await server.stop();
    }
  },
);

Deno.test("a subscriber on one worker gets the words every worker adds", opts, async () => {
  const server = await twoWorkers();
  const sub = await subscribe(
    server.url,
    "subscription { wordEvents(store: SQLITE) { kind word { word } } }",
  );
  try {
    const tag = uniqueTag();
    for (let i = 0; i < 8; i++) assertOk(!(await addWord(server.url, `${tag}${i}`)).errors);
    const events = await sub.waitFor(8, 10_000);
    const words = events.map((e) => (e.data!.wordEvents as { word: { word: string } }).word.word);
    assertEquals(words.sort(), Array.from({ length: 8 }, (_, i) => `${tag}${i}`).sort());
  } finally {
    sub.close();
    await server.stop();
  }
});

Deno.test(
  "SIGTERM drains every worker, /readyz 503 while they still answer, then exit 0",
  opts,
  async () => {
    const server = await twoWorkers({ SHUTDOWN_DRAIN_MS: "1500" });
    const stopped = server.stop("SIGTERM", 15_000);
    await new Promise((r) => setTimeout(r, 300));
    const statuses = [];
    for (let i = 0; i < 8; i++) {
      statuses.push(
        (await onNewConnection(`${server.url}/readyz`)).status,
      );
    }
    assertEquals(statuses, Array(8).fill(503));
    const status = await stopped;
    assertEquals(status.code, 0);
    const draining = server.output().match(/SIGTERM: draining/g) ?? [];
    assertEquals(draining.length, 2, server.output());
  },
);

Deno.test(
  "/metrics covers every worker: operations add up, the process's memory is counted once",
  opts,
  async () => {
    const server = await twoWorkers();
    try {
      const tag = uniqueTag();
      for (let i = 0; i < 8; i++) assertOk(!(await addWord(server.url, `${tag}${i}`)).errors);
      const res = await fetch(`${server.url}/metrics`);
      assertEquals(res.status, 200);
      const text = await res.text();
      const value = (series: string) =>
        Number(text.split("\n").find((l) => l.startsWith(series + " "))?.split(" ")[1]);
      assertEquals(value('grand_tour_graphql_operations_total{type="mutation",outcome="ok"}'), 8);
      // Workers share one process: its resident memory is one reading, not two added up.
      const rss = value("process_resident_memory_bytes") / 1024;
      const vmRss = Number(
        Deno.readTextFileSync(`/proc/${server.pid}/status`).match(/VmRSS:\s+(\d+)/)![1],
      );
      assertOk(rss > vmRss * 0.6 && rss < vmRss * 1.4, `${rss} KiB against VmRSS ${vmRss} KiB`);
      assertEquals(value('grand_tour_store_healthy{store="SQLITE"}'), 1);
    } finally {
      await server.stop();
    }
  },
);
