/**
 * The real server process on a free port: GraphQL over HTTP, the page,
 * probes, an unreachable store and clean shutdown.
 */
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import { startServer } from "./support/gateway.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function gql(url: string, query: string, variables: Record<string, unknown> = {}) {
  const res = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, body: await res.json() };
}

Deno.test("GraphQL over HTTP: addWord then words on the embedded SQLite store", opts, async () => {
  const server = await startServer();
  try {
    const add = await gql(
      server.url,
      `mutation($w: String!, $d: String!) { addWord(store: SQLITE, word: $w, definition: $d) { id word definition store createdAt } }`,
      { w: " gateway ", d: "one API over every store" },
    );
    assertEquals(add.status, 200);
    const word = add.body.data.addWord;
    assertEquals([word.word, word.definition, word.store], [
      "gateway",
      "one API over every store",
      "SQLITE",
    ]);
    const list = await gql(
      server.url,
      `{ words(store: SQLITE) { id word definition store createdAt } }`,
    );
    assertEquals(list.body.data.words, [word]);
  } finally {
    await server.stop();
  }
});

Deno.test(
  "the page is served with labelled Word, Definition and Store controls and an Add button",
  opts,
  async () => {
    const server = await startServer();
    try {
      const res = await fetch(`${server.url}/`);
      assertEquals(res.status, 200);
      assertStringIncludes(res.headers.get("content-type") ?? "", "text/html");
      const html = await res.text();
      for (const label of ["Word", "Definition", "Store"]) {
        assertOk(new RegExp(`<label for="\\w+">${label}</label>`).test(html), `label ${label}`);
      }
      assertStringIncludes(html, `<button type="submit">Add</button>`);
      assertOk(/<(ol|ul) id="words"/.test(html));
      assertOk(!/<script(?![^>]*\bsrc=)[^>]*>/.test(html), "no inline script");
      const js = await fetch(`${server.url}/app.js`);
      assertStringIncludes(js.headers.get("content-type") ?? "", "javascript");
      const source = await js.text();
      assertOk(!source.includes("innerHTML"), "database text is never inserted as HTML");
      assertEquals((await fetch(`${server.url}/no-such-file.txt`)).status, 404);
    } finally {
      await server.stop();
    }
  },
);

Deno.test("a browser asking /graphql for HTML gets GraphiQL", opts, async () => {
  const server = await startServer();
  try {
    const res = await fetch(`${server.url}/graphql`, { headers: { accept: "text/html" } });
    assertEquals(res.status, 200);
    assertStringIncludes(await res.text(), "GraphiQL");
  } finally {
    await server.stop();
  }
});

Deno.test("GRAPHIQL=false serves no GraphiQL page", opts, async () => {
  const server = await startServer({ GRAPHIQL: "false" });
  try {
    const res = await fetch(`${server.url}/graphql`, { headers: { accept: "text/html" } });
    const text = await res.text();
    assertOk(!text.includes("GraphiQL"), "GraphiQL must be off");
  } finally {
    await server.stop();
  }
});

Deno.test(
  "healthz is 200 and readyz is 200 when every configured store is healthy",
  opts,
  async () => {
    const server = await startServer();
    try {
      assertEquals((await fetch(`${server.url}/healthz`)).status, 200);
      const ready = await fetch(`${server.url}/readyz`);
      const body = await ready.json();
      assertEquals(ready.status, 200);
      assertEquals(body.stores.length, 8);
      assertEquals(body.stores[0], {
        ...body.stores[0],
        store: "SQLITE",
        configured: true,
        healthy: true,
      });
      assertEquals(body.stores[1], {
        store: "MONGODB",
        configured: false,
        healthy: false,
        message: "not configured",
      });
    } finally {
      await server.stop();
    }
  },
);

Deno.test(
  "an unreachable store: readyz 503, STORE_UNAVAILABLE, other stores serve, no secret anywhere",
  opts,
  async () => {
    const secret = "pw-never-shown-7731";
    const server = await startServer({
      POSTGRESQL_URL: `postgres://someone:${secret}@127.0.0.1:9/grand_tour`,
      CONNECT_TIMEOUT_MS: "300",
    });
    try {
      const ready = await fetch(`${server.url}/readyz`);
      const readyText = await ready.text();
      assertEquals(ready.status, 503);
      const pg = JSON.parse(readyText).stores.find((s: { store: string }) =>
        s.store === "POSTGRESQL"
      );
      assertEquals([pg.configured, pg.healthy], [true, false]);

      const t0 = performance.now();
      const res = await gql(server.url, `{ words(store: POSTGRESQL) { id } }`);
      console.log(`STORE_UNAVAILABLE answered in ${Math.round(performance.now() - t0)} ms`);
      assertEquals(res.body.errors[0].extensions.code, "STORE_UNAVAILABLE");
      assertStringIncludes(res.body.errors[0].message, "POSTGRESQL");

      const add = await gql(
        server.url,
        `mutation { addWord(store: POSTGRESQL, word: "a", definition: "b") { id } }`,
      );
      assertEquals(add.body.errors[0].extensions.code, "STORE_UNAVAILABLE");

      const sqlite = await gql(server.url, `{ words(store: SQLITE) { id } }`);
      assertEquals(sqlite.body.errors, undefined);

      const stores = await gql(server.url, `{ stores { store message } }`);
      await new Promise((r) => setTimeout(r, 1000)); // let a reconnect attempt log
      for (
        const text of [
          readyText,
          JSON.stringify(res.body),
          JSON.stringify(add.body),
          JSON.stringify(stores.body),
          server.output(),
        ]
      ) {
        assertOk(!text.includes(secret), "the password leaked");
        assertOk(!text.includes("someone:"), "the connection string leaked");
        assertOk(!/\bat .+\.(ts|js):\d+/.test(text), "a stack trace leaked");
      }
    } finally {
      await server.stop();
    }
  },
);

Deno.test("malformed JSON and unknown fields get GraphQL errors with a code", opts, async () => {
  const server = await startServer();
  try {
    const bad = await fetch(`${server.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    assertEquals(bad.status, 400);
    const badBody = await bad.json();
    assertOk(badBody.errors[0].extensions.code, JSON.stringify(badBody));
    const unknown = await gql(server.url, `{ words(store: SQLITE) { nope } }`);
    assertEquals(unknown.body.errors[0].extensions.code, "GRAPHQL_VALIDATION_FAILED");
    const wrongType = await gql(server.url, `query($s: Store!) { words(store: $s) { id } }`, {
      s: "ORACLE",
    });
    assertEquals(wrongType.body.errors[0].extensions.code, "BAD_USER_INPUT");
    const missing = await gql(server.url, `query($s: Store!) { words(store: $s) { id } }`);
    assertEquals(missing.body.errors[0].extensions.code, "BAD_USER_INPUT");
  } finally {
    await server.stop();
  }
});

Deno.test("SIGTERM closes the stores and exits 0", opts, async () => {
  const server = await startServer();
  const status = await server.stop("SIGTERM");
  assertEquals(status.code, 0);
  assertStringIncludes(server.output(), "closing stores");
});

Deno.test("a malformed setting stops start-up with a clear message", opts, async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../main.ts", import.meta.url).pathname],
    env: { PORT: "not-a-port" },
    cwd: await Deno.makeTempDir(),
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 1);
  assertStringIncludes(new TextDecoder().decode(out.stderr), "PORT must be a whole number");
});

Deno.test(
  "the page has a Token field kept in sessionStorage and sends it with the CSRF header",
  opts,
  async () => {
    const server = await startServer();
    try {
      const html = await (await fetch(`${server.url}/`)).text();
      assertOk(/<label for="token">Token<\/label>/.test(html), "label Token");
      assertOk(/<input id="token" type="password"/.test(html), "a password field");
      const js = await (await fetch(`${server.url}/app.js`)).text();
      assertStringIncludes(js, "sessionStorage");
      assertStringIncludes(js, "Bearer ");
      assertStringIncludes(js, `"x-graphql-yoga-csrf"`);
    } finally {
      await server.stop();
    }
  },
);

Deno.test(
  "with WRITE_TOKEN and READ_TOKEN set, probes and the page need no token; GraphQL does",
  opts,
  async () => {
    const server = await startServer({
      WRITE_TOKEN: "write-0123456789abcdef",
      READ_TOKEN: "read-0123456789abcdef",
    });
    try {
      for (const path of ["/healthz", "/readyz", "/", "/app.js", "/style.css"]) {
        const res = await fetch(`${server.url}${path}`);
        await res.body?.cancel();
        assertEquals(res.status, 200, path);
      }
      const denied = await gql(server.url, `{ stores { store } }`);
      assertEquals(denied.body.errors[0].extensions.code, "UNAUTHENTICATED");
      const res = await fetch(`${server.url}/graphql`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: "Bearer read-0123456789abcdef",
        },
        body: JSON.stringify({ query: "{ stores { store } }" }),
      });
      assertEquals((await res.json()).data.stores.length, 8);
    } finally {
      await server.stop();
    }
  },
);

Deno.test(
  "with SERVER_TIMING=true each store call is reported in Server-Timing; by default nothing is",
  opts,
  async () => {
    const post = (url: string, query: string) =>
      fetch(`${url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({ query }),
      });
    const timed = await startServer({ SERVER_TIMING: "true" });
    const plain = await startServer();
    try {
      const add = await post(
        timed.url,
        `mutation { addWord(store: SQLITE, word: "timed", definition: "d") { id } }`,
      );
      await add.body?.cancel();
      const header = add.headers.get("server-timing") ?? "";
      const dur = Number(header.match(/^store;desc="SQLITE";dur=(\d+\.\d{2})$/)?.[1]);
      assertOk(dur >= 0, `Server-Timing after addWord: ${header}`);
      const list = await post(timed.url, `{ words(store: SQLITE) { id } }`);
      assertEquals((await list.json()).data.words.length, 1);
      assertStringIncludes(list.headers.get("server-timing") ?? "", `store;desc="SQLITE";dur=`);
      // Rejected before any store was called: nothing to report.
      const bad = await post(timed.url, `{ words(store: SQLITE, limit: -1) { id } }`);
      await bad.body?.cancel();
      assertEquals(bad.headers.get("server-timing"), null);
      const off = await post(plain.url, `{ words(store: SQLITE) { id } }`);
      await off.body?.cancel();
      assertEquals(off.headers.get("server-timing"), null);
    } finally {
      await timed.stop();
      await plain.stop();
    }
  },
);
