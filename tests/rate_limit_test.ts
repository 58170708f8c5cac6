/**
 * The write rate limit (`RATE_LIMIT_PER_MINUTE`, server/rate_limit.ts) on the
 * in-process gateway with the embedded SQLite store: every root mutation
 * field a request would execute counts, however the document spells it, and
 * a request over the limit is refused whole and writes nothing.
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import { type GraphQLBody, testRegistry, uniqueTag } from "./support/gateway.ts";
import { parseSecurity } from "../server/config.ts";
import { createGraphQL } from "../server/graphql.ts";

/** One reply of the limited gateway. */
interface Reply {
  status: number;
  retryAfter: string | null;
  body: GraphQLBody;
}

/** The gateway in-process with a rate limit of `perMinute` writes. */
class LimitedGateway {
  readonly #registry = testRegistry();
  readonly #graphql;
  #clients = 0;

  constructor(perMinute: number) {
    this.#graphql = createGraphQL({
      registry: this.#registry,
      graphiql: false,
      security: { ...parseSecurity({}), rateLimitPerMinute: perMinute },
    });
  }

  /** Resolves once the embedded SQLite store is open. */
  ready(): Promise<void> {
    return this.#registry.embeddedReady();
  }

  /** A client address no request has used yet, so with a whole budget. */
  newClient(): string {
    return `192.0.2.${++this.#clients}`;
  }

  /** Runs one operation as `clientAddress`. */
  async exec(
    clientAddress: string,
    query: string,
    variables: Record<string, unknown> = {},
    operationName?: string,
  ): Promise<Reply> {
    const res = await this.#graphql.fetch(
      "http://test/graphql",
      {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query, variables, operationName }),
      },
      { clientAddress },
    );
    return {
      status: res.status,
      retryAfter: res.headers.get("retry-after"),
      body: await res.json(),
    };
  }

  /** The words stored with `tag` in them, sorted; read by a client of its own. */
  async words(tag: string): Promise<string[]> {
    const reply = await this.exec(
      "198.51.100.1",
      `query($tag: String) { words(store: SQLITE, search: $tag, limit: 1000) { word } }`,
      { tag },
    );
    assertEquals(reply.body.errors, undefined);
    const words = reply.body.data?.words as { word: string }[];
    return words.map((w) => w.word).sort();
  }

  async close(): Promise<void> {
    await this.#graphql.dispose();
    await this.#registry.close();
  }
}

/** Runs `fn` with a fresh gateway limited to `perMinute` writes, and closes it. */
async function withGateway(
  perMinute: number,
  fn: (g: LimitedGateway) => Promise<void>,
): Promise<void> {
  const g = new LimitedGateway(perMinute);
  try {
    await g.ready();
    await fn(g);
  } finally {
    await g.close();
  }
}

/** `alias: addWord(...)` writing the word `<tag>-<alias>`. */
function add(tag: string, alias: string, directives = ""): string {
  return `${alias}: addWord(store: SQLITE, word: "${tag}-${alias}", definition: "d") ${directives} { id }`;
}

/** `n` aliased writes `w0`…`w<n-1>`. */
function adds(tag: string, n: number): string {
  return Array.from({ length: n }, (_, i) => add(tag, `w${i}`)).join("\n");
}

function assertAccepted(reply: Reply, where: string): void {
  assertEquals([reply.status, reply.body.errors], [200, undefined], where);
}

/** Refused whole with `RATE_LIMITED`, HTTP 429 and a Retry-After within the minute. */
function assertRateLimited(reply: Reply, where: string): void {
  assertEquals(reply.status, 429, where);
  assertEquals(reply.body.data, undefined, where);
  const [error] = reply.body.errors ?? [];
  assertEquals(error?.extensions?.code, "RATE_LIMITED", where);
  const seconds = Number(reply.retryAfter);
  assertOk(seconds >= 1 && seconds <= 60, `${where}: Retry-After ${reply.retryAfter}`);
  assertEquals(error.extensions?.retryAfterSeconds, seconds, where);
}

/**
 * Sends `mutation` as a new client and checks that it counted exactly the
 * gateway's limit: it is accepted and writes `written` (aliases), and the
 * client's next single write is refused.
 */
async function assertSpendsWholeBudget(
  g: LimitedGateway,
  tag: string,
  mutation: string,
  written: string[],
  variables: Record<string, unknown> = {},
): Promise<void> {
  const client = g.newClient();
  assertAccepted(await g.exec(client, mutation, variables), mutation);
  assertEquals(await g.words(tag), written.map((alias) => `${tag}-${alias}`).sort());
  const next = `mutation { ${add(tag, "next")} }`;
  assertRateLimited(await g.exec(client, next), "the next single write");
  assertEquals((await g.words(tag)).length, written.length, "the refused write wrote nothing");
}

Deno.test("15 aliased writes in one request are refused whole, write nothing and spend no budget", async () => {
  await withGateway(2, async (g) => {
    const tag = uniqueTag();
    const client = g.newClient();
    for (let i = 0; i < 2; i++) {
      assertRateLimited(await g.exec(client, `mutation { ${adds(tag, 15)} }`), `request ${i + 1}`);
    }
    assertEquals(await g.words(tag), []);
    assertAccepted(await g.exec(client, `mutation { ${adds(tag, 2)} }`), "2 writes after");
    assertEquals(await g.words(tag), [`${tag}-w0`, `${tag}-w1`]);
  });
});

Deno.test("a request exactly at the limit passes and the next single write is refused", async () => {
  await withGateway(3, async (g) => {
    const tag = uniqueTag();
    await assertSpendsWholeBudget(g, tag, `mutation { ${adds(tag, 3)} }`, ["w0", "w1", "w2"]);
  });
});

Deno.test("writes one at a time count up to the limit; a refused write leaves the budget as it was", async () => {
  await withGateway(3, async (g) => {
    const tag = uniqueTag();
    const client = g.newClient();
    assertAccepted(await g.exec(client, `mutation { ${add(tag, "a")} }`), "write 1");
    assertRateLimited(await g.exec(client, `mutation { ${adds(tag, 3)} }`), "3 more");
    assertAccepted(await g.exec(client, `mutation { ${add(tag, "b")} }`), "write 2");
    assertAccepted(await g.exec(client, `mutation { ${add(tag, "c")} }`), "write 3");
    assertRateLimited(await g.exec(client, `mutation { ${add(tag, "d")} }`), "write 4");
    assertEquals(await g.words(tag), [`${tag}-a`, `${tag}-b`, `${tag}-c`]);
  });
});

Deno.test("writes in named fragments count, nested or spread twice", async () => {
  await withGateway(2, async (g) => {
    const tag = uniqueTag();
    const fragments = `
      fragment A on Mutation { ${add(tag, "a")} ...B }
      fragment B on Mutation { ${add(tag, "b")} }`;
    await assertSpendsWholeBudget(g, tag, `mutation { ...A ...A ...B } ${fragments}`, ["a", "b"]);
    const tooMany = `mutation { ...A ${add(tag, "c")} } ${fragments}`;
    assertRateLimited(await g.exec(g.newClient(), tooMany), "3 writes through fragments");
    assertEquals((await g.words(tag)).length, 2);
  });
});

Deno.test("writes in inline fragments count, typed or not", async () => {
  await withGateway(2, async (g) => {
    const tag = uniqueTag();
    const mutation = `mutation { ... on Mutation { ${add(tag, "a")} } ... { ${add(tag, "b")} } }`;
    await assertSpendsWholeBudget(g, tag, mutation, ["a", "b"]);
    const tooMany = `mutation { ... on Mutation { ${add(tag, "c")} ... { ${adds(tag, 2)} } } }`;
    assertRateLimited(await g.exec(g.newClient(), tooMany), "3 writes in inline fragments");
    assertEquals((await g.words(tag)).length, 2);
  });
});

Deno.test("fields with the same response key execute once and count once", async () => {
  await withGateway(2, async (g) => {
    const tag = uniqueTag();
    const same = `a: addWord(store: SQLITE, word: "${tag}-a", definition: "d")`;
    const mutation = `mutation { ${same} { id } ${same} { word } ... { ${same} { id } } ${
      add(tag, "b")
    } }`;
    await assertSpendsWholeBudget(g, tag, mutation, ["a", "b"]);
  });
});

Deno.test("@skip and @include with literal arguments: skipped writes do not count", async () => {
  await withGateway(2, async (g) => {
    const tag = uniqueTag();
    const mutation = `mutation {
      ${add(tag, "a", "@skip(if: true)")}
      ${add(tag, "b", "@include(if: false)")}
      ${add(tag, "c", "@skip(if: false)")}
      ${add(tag, "d", "@include(if: true)")}
      ... on Mutation @skip(if: true) { ${add(tag, "e")} }
      ... @include(if: false) { ${add(tag, "f")} }
    }`;
    await assertSpendsWholeBudget(g, tag, mutation, ["c", "d"]);
    const included = `mutation {
      ${add(tag, "g", "@include(if: true)")}
      ${add(tag, "h", "@skip(if: false)")}
      ... on Mutation @include(if: true) { ${add(tag, "i")} }
    }`;
    assertRateLimited(await g.exec(g.newClient(), included), "3 included writes");
    assertEquals((await g.words(tag)).length, 2);
  });
});

Deno.test("@skip and @include with variables, and variable defaults, decide what counts", async () => {
  await withGateway(2, async (g) => {
    const tag = uniqueTag();
    const mutation = `mutation($yes: Boolean!, $no: Boolean = false) {
      ${add(tag, "a", "@include(if: $yes)")}
      ${add(tag, "b", "@skip(if: $yes)")}
      ${add(tag, "c", "@include(if: $no)")}
      ${add(tag, "d", "@skip(if: $no)")}
      ...F @include(if: $no)
    }
    fragment F on Mutation { ${add(tag, "e")} }`;
    // $no takes its default, false: a and d run. ($no is nullable: graphql-jit 0.8.7, which
    // executes for the gateway, refuses an omitted `Boolean! = false` that graphql-js accepts.)
    await assertSpendsWholeBudget(g, tag, mutation, ["a", "d"], { yes: true });
    // b, c and e would run: refused whole.
    const flipped = await g.exec(g.newClient(), mutation, { yes: false, no: true });
    assertRateLimited(flipped, "3 writes chosen by variables");
    assertEquals((await g.words(tag)).length, 2);
  });
});

Deno.test("__typename in a mutation is not a write", async () => {
  await withGateway(2, async (g) => {
    const tag = uniqueTag();
    const mutation = `mutation { __typename ${adds(tag, 2)} t: __typename ... { __typename } }`;
    await assertSpendsWholeBudget(g, tag, mutation, ["w0", "w1"]);
    const client = g.newClient();
    for (let i = 0; i < 3; i++) {
      const reply = await g.exec(client, `mutation { __typename }`);
      assertAccepted(reply, `__typename ${i + 1}`);
      assertEquals(reply.body.data, { __typename: "Mutation" });
    }
    assertAccepted(await g.exec(client, `mutation { ${adds(tag + "x", 2)} }`), "then 2 writes");
  });
});

Deno.test("queries are never counted, before or after the budget is spent", async () => {
  await withGateway(2, async (g) => {
    const tag = uniqueTag();
    const client = g.newClient();
    const read = `{ words(store: SQLITE, search: "${tag}") { word } stores { store } }`;
    for (let i = 0; i < 5; i++) assertAccepted(await g.exec(client, read), `read ${i + 1}`);
    // A document with a mutation in it, but the query is the operation executed.
    const both = `query Q { words(store: SQLITE) { id } } mutation M { ${adds(tag, 15)} }`;
    assertAccepted(await g.exec(client, both, {}, "Q"), "query Q next to mutation M");
    assertAccepted(await g.exec(client, `mutation { ${adds(tag, 2)} }`), "2 writes");
    assertRateLimited(await g.exec(client, both, {}, "M"), "mutation M");
    for (let i = 0; i < 5; i++) assertAccepted(await g.exec(client, read), `read ${i + 6}`);
    assertEquals(await g.words(tag), [`${tag}-w0`, `${tag}-w1`]);
  });
});

Deno.test("different client addresses have separate budgets", async () => {
  await withGateway(2, async (g) => {
    const tag = uniqueTag();
    const [first, second] = [g.newClient(), g.newClient()];
    assertAccepted(await g.exec(first, `mutation { ${add(tag, "a")} ${add(tag, "b")} }`), "first");
    assertRateLimited(await g.exec(first, `mutation { ${add(tag, "c")} }`), "first again");
    assertAccepted(
      await g.exec(second, `mutation { ${add(tag, "d")} ${add(tag, "e")} }`),
      "second",
    );
    assertRateLimited(await g.exec(second, `mutation { ${add(tag, "f")} }`), "second again");
    assertEquals(await g.words(tag), ["a", "b", "d", "e"].map((w) => `${tag}-${w}`));
  });
});
