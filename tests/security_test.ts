/**
 * Hostile HTTP and GraphQL input and access control, against the real
 * server process (`main.ts` on a free port): every refusal has the right
 * status and a GraphQL error with `extensions.code`, nothing is written, the
 * server stays up, and no password, URL or stack trace reaches a response or
 * the log. The last test prints how many hostile inputs were tried.
 */
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import { storeConfig, storeTest, testEnv } from "./support/env.ts";
import { type ServerProcess, startServer, uniqueTag } from "./support/gateway.ts";
import { STORE_NAMES, type StoreName } from "../stores/types.ts";
import { waitForStores } from "../scripts/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Hostile inputs tried, per category (printed by the last test). */
const tally = new Map<string, number>();
function tried(category: string, n = 1): void {
  tally.set(category, (tally.get(category) ?? 0) + n);
}

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // deno-lint-ignore no-explicit-any
  body: any;
}

const JSON_HEADERS = { "content-type": "application/json" };

async function send(url: string, init: RequestInit = {}): Promise<Reply> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, text, body };
}

function gql(
  server: ServerProcess,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<Reply> {
  return send(`${server.url}/graphql`, {
    method: "POST",
    headers: { ...JSON_HEADERS, ...headers },
    body: JSON.stringify({ query, variables }),
  });
}

/** Asserts a GraphQL-shaped refusal: status, code of the first error, no data written. */
function assertRefused(reply: Reply, status: number, code: string, label: string): void {
  const where = `${label}: ${reply.status} ${reply.text.slice(0, 300)}`;
  assertEquals(reply.status, status, where);
  assertOk(Array.isArray(reply.body?.errors) && reply.body.errors.length > 0, where);
  assertEquals(reply.body.errors[0].extensions?.code, code, where);
  assertOk(!reply.body.data, where);
  for (const e of reply.body.errors) {
    assertOk(e.extensions?.code, `every error has a code: ${where}`);
  }
}

const SECURITY_OFF = { RATE_LIMIT_PER_MINUTE: "0" };

// ---------------------------------------------------------------------------
// 1. Hostile HTTP requests and GraphQL documents

Deno.test(
  "malformed HTTP requests get the right status and a coded GraphQL error; nothing is written",
  opts,
  async () => {
    const server = await startServer(SECURITY_OFF);
    try {
      const url = `${server.url}/graphql`;
      const post = (body: string, headers: Record<string, string> = JSON_HEADERS) => ({
        method: "POST",
        headers,
        body,
      });
      const csrf = { "x-graphql-yoga-csrf": "1" };
      const mutation = `mutation { addWord(store: SQLITE, word: "w", definition: "d") { id } }`;
      const q = (s: string) => encodeURIComponent(s);
      const cases: [string, string, RequestInit, number, string][] = [
        ["invalid JSON", url, post("{not json"), 400, "BAD_REQUEST"],
        ["empty body", url, post(""), 400, "BAD_REQUEST"],
        ["truncated JSON", url, post('{"query":'), 400, "BAD_REQUEST"],
        ["JSON null", url, post("null"), 400, "BAD_REQUEST"],
        ["JSON number", url, post("42"), 400, "BAD_REQUEST"],
        ["JSON string", url, post('"{ stores { store } }"'), 400, "BAD_REQUEST"],
        ["query is a number", url, post('{"query":5}'), 400, "BAD_REQUEST"],
        ["query is an object", url, post('{"query":{"$ne":null}}'), 400, "BAD_REQUEST"],
        ["no query", url, post("{}"), 200, "BAD_REQUEST"],
        [
          "variables is a string",
          url,
          post('{"query":"{stores{store}}","variables":"x"}'),
          400,
          "BAD_REQUEST",
        ],
        [
          "variables is a list",
          url,
          post('{"query":"{stores{store}}","variables":[1]}'),
          400,
          "BAD_REQUEST",
        ],
        [
          "operationName unknown",
          url,
          post('{"query":"query A{stores{store}}","operationName":"Z"}'),
          400,
          "OPERATION_RESOLUTION_FAILURE",
        ],
        [
          "two operations, no name",
          url,
          post('{"query":"query A{stores{store}} query B{stores{store}}"}'),
          400,
          "OPERATION_RESOLUTION_FAILURE",
        ],
        [
          "batched operations",
          url,
          post('[{"query":"{stores{store}}"},{"query":"{stores{store}}"}]'),
          400,
          "BAD_REQUEST",
        ],
        [
          "300 batched mutations",
          url,
          post(JSON.stringify(Array(300).fill({ query: mutation }))),
          400,
          "BAD_REQUEST",
        ],
        [
          "text/plain body",
          url,
          post('{"query":"{stores{store}}"}', { "content-type": "text/plain" }),
          415,
          "UNSUPPORTED_MEDIA_TYPE",
        ],
        [
          "form body",
          url,
          post("query=%7Bstores%7Bstore%7D%7D", {
            "content-type": "application/x-www-form-urlencoded",
          }),
          415,
          "UNSUPPORTED_MEDIA_TYPE",
        ],
        [
          "multipart body",
          url,
          {
            method: "POST",
            body: (() => {
              const f = new FormData();
              f.set("operations", '{"query":"{stores{store}}"}');
              return f;
            })(),
          },
          415,
          "UNSUPPORTED_MEDIA_TYPE",
        ],
        [
          "XML body",
          url,
          post("<query/>", { "content-type": "application/xml" }),
          415,
          "UNSUPPORTED_MEDIA_TYPE",
        ],
        [
          "no content type",
          url,
          { method: "POST", body: new TextEncoder().encode('{"query":"{stores{store}}"}') },
          415,
          "UNSUPPORTED_MEDIA_TYPE",
        ],
        ["PUT", url, { method: "PUT", headers: JSON_HEADERS, body: "{}" }, 405, "BAD_REQUEST"],
        ["DELETE", url, { method: "DELETE", headers: csrf }, 405, "BAD_REQUEST"],
        ["PATCH", url, { method: "PATCH", headers: JSON_HEADERS, body: "{}" }, 405, "BAD_REQUEST"],
        [
          "GET without the CSRF header",
          `${url}?query=${q("{stores{store}}")}`,
          {},
          403,
          "CSRF_PREVENTED",
        ],
        ["GET mutation", `${url}?query=${q(mutation)}`, { headers: csrf }, 405, "BAD_REQUEST"],
        [
          "GET variables not JSON",
          `${url}?query=${q("{stores{store}}")}&variables=%7Bbad`,
          { headers: csrf },
          400,
          "BAD_REQUEST",
        ],
        [
          "GET extensions not JSON",
          `${url}?query=${q("{stores{store}}")}&extensions=nope`,
          { headers: csrf },
          400,
          "BAD_REQUEST",
        ],
        [
          "Accept: text/xml only",
          `${url}?query=${q("{stores{store}}")}`,
          { headers: { ...csrf, accept: "text/xml" } },
          406,
          "NOT_ACCEPTABLE",
        ],
      ];
      for (const [label, target, init, status, code] of cases) {
        tried("malformed HTTP request");
        assertRefused(await send(target, init), status, code, label);
      }
      const list = await gql(server, `{ words(store: SQLITE) { id } }`);
      assertEquals(list.body, { data: { words: [] } }, "nothing was written");
      assertEquals((await send(`${server.url}/healthz`)).status, 200, "the server stays up");
    } finally {
      await server.stop();
    }
  },
);

Deno.test(
  "bad GraphQL documents and variables get coded errors; with graphql-response+json a 400",
  opts,
  async () => {
    const server = await startServer(SECURITY_OFF);
    try {
      const word =
        `mutation($w: String!) { addWord(store: SQLITE, word: $w, definition: "d") { id } }`;
      // variables that cannot be coerced are a request error: 400 (graphql-over-HTTP)
      const cases: [string, string, Record<string, unknown> | undefined, string][] = [
        ["syntax error", "{ stores { ", undefined, "GRAPHQL_PARSE_FAILED"],
        [
          "unterminated string",
          '{ words(store: SQLITE, search: "abc) { id } }',
          undefined,
          "GRAPHQL_PARSE_FAILED",
        ],
        [
          "unknown field",
          "{ words(store: SQLITE) { nope } }",
          undefined,
          "GRAPHQL_VALIDATION_FAILED",
        ],
        ["unknown top-level field", "{ passwords }", undefined, "GRAPHQL_VALIDATION_FAILED"],
        [
          "unknown argument",
          "{ stores(admin: true) { store } }",
          undefined,
          "GRAPHQL_VALIDATION_FAILED",
        ],
        [
          "unknown enum literal",
          "{ words(store: ORACLE) { id } }",
          undefined,
          "GRAPHQL_VALIDATION_FAILED",
        ],
        [
          "literal of the wrong type",
          `mutation { addWord(store: SQLITE, word: 5, definition: "d") { id } }`,
          undefined,
          "GRAPHQL_VALIDATION_FAILED",
        ],
        [
          "Int out of range",
          "{ words(store: SQLITE, limit: 99999999999) { id } }",
          undefined,
          "GRAPHQL_VALIDATION_FAILED",
        ],
        ["missing selection", "{ words(store: SQLITE) }", undefined, "GRAPHQL_VALIDATION_FAILED"],
        [
          "unknown directive",
          "{ stores @admin { store } }",
          undefined,
          "GRAPHQL_VALIDATION_FAILED",
        ],
        [
          "fragment cycle",
          "{ stores { ...A } } fragment A on StoreStatus { ...B } fragment B on StoreStatus { ...A }",
          undefined,
          "GRAPHQL_VALIDATION_FAILED",
        ],
        [
          "undefined variable",
          "{ words(store: $s) { id } }",
          undefined,
          "GRAPHQL_VALIDATION_FAILED",
        ],
        [
          "subscription of a field Subscription has not",
          "subscription { words }",
          undefined,
          "GRAPHQL_VALIDATION_FAILED",
        ],
        ["missing variable", word, {}, "BAD_USER_INPUT"],
        ["null variable", word, { w: null }, "BAD_USER_INPUT"],
        ["number variable", word, { w: 5 }, "BAD_USER_INPUT"],
        ["object variable", word, { w: { $gt: "" } }, "BAD_USER_INPUT"],
        ["list variable", word, { w: ["a"] }, "BAD_USER_INPUT"],
        [
          "unknown enum variable",
          "query($s: Store!) { words(store: $s) { id } }",
          { s: "ORACLE" },
          "BAD_USER_INPUT",
        ],
        [
          "float for Int",
          "query($l: Int) { words(store: SQLITE, limit: $l) { id } }",
          { l: 1.5 },
          "BAD_USER_INPUT",
        ],
      ];
      for (const [label, query, variables, code] of cases) {
        tried("bad GraphQL document or variable");
        const reply = await gql(server, query, variables);
        assertRefused(reply, variables ? 400 : 200, code, label);
      }
      tried("bad GraphQL document or variable");
      const strict = await gql(server, "{ nope }", undefined, {
        accept: "application/graphql-response+json",
      });
      assertRefused(strict, 400, "GRAPHQL_VALIDATION_FAILED", "graphql-response+json");
      assertStringIncludes(strict.headers.get("content-type") ?? "", "graphql-response+json");
    } finally {
      await server.stop();
    }
  },
);

/** `addWord` inputs that break the rules; the other field carries `tag` so a stray write would show. */
function hostileWords(tag: string): [string, Record<string, unknown>][] {
  const ok = `${tag} fine`;
  const w = (word: unknown): [string, Record<string, unknown>] => [
    `word ${JSON.stringify(word)?.slice(0, 24)}`,
    { word, definition: ok },
  ];
  const d = (definition: unknown): [string, Record<string, unknown>] => [
    `definition ${JSON.stringify(definition)?.slice(0, 24)}`,
    { word: ok, definition },
  ];
  return [
    w(""),
    w("   "),
    w("\t\n \r\n"),
    w("\u00a0\u2003\u3000"),
    w("a".repeat(257)),
    w("é".repeat(257)),
    w("😀".repeat(257)),
    w(`${tag}${"x".repeat(300)}`),
    w("a\u0000b"),
    w("a\u0007b"),
    w("\u001b[31mred"),
    w("a\u007fb"),
    w("a\u0085b"),
    w("a\tb"),
    w("a\nb"),
    w("\ud800"),
    w("a\udc00b"),
    w(5),
    w(null),
    w(true),
    w({ $gt: "" }),
    w(["a"]),
    d(""),
    d("  \n "),
    d("x".repeat(257)),
    d("a\u0000"),
    d("\u001b[2J"),
    d("a\rb"),
    d("\ud83d"),
    d({ $where: "1" }),
  ];
}

/** Waits until `/readyz` reports `store` healthy; throws after 30 s. */
async function waitHealthy(server: ServerProcess, store: StoreName): Promise<void> {
  const unhealthy = await waitForStores(server.url, [store], 30_000);
  if (unhealthy.size) throw new Error(`${store} did not become healthy: ${unhealthy.get(store)}`);
}

/** Hostile addWord inputs tried per store. */
const perStore = new Map<StoreName, number>();

for (const store of STORE_NAMES) {
  storeTest(
    store,
    "hostile addWord input is refused with BAD_USER_INPUT and writes nothing",
    async (config) => {
      const env: Record<string, string> = { ...SECURITY_OFF };
      if (store !== "SQLITE") env[`${store}_URL`] = config.url;
      if (store === "SCYLLA") env.SCYLLA_DATACENTER = testEnv.SCYLLA_DATACENTER ?? "datacenter1";
      const server = await startServer(env);
      try {
        await waitHealthy(server, store);
        const tag = uniqueTag();
        const add = `mutation($s: Store!, $word: String!, $definition: String!) {
          addWord(store: $s, word: $word, definition: $definition) { id }
        }`;
        for (const [label, vars] of hostileWords(tag)) {
          tried("hostile addWord input");
          perStore.set(store, (perStore.get(store) ?? 0) + 1);
          // a string breaking the rules: 200 and data null; a value of the wrong type: 400
          const typed = typeof vars.word === "string" && typeof vars.definition === "string";
          const reply = await gql(server, add, { s: store, ...vars });
          assertRefused(reply, typed ? 200 : 400, "BAD_USER_INPUT", label);
        }
        const search = `query($s: Store!, $q: String) { words(store: $s, search: $q) { word } }`;
        const none = await gql(server, search, { s: store, q: tag });
        assertEquals(none.body, { data: { words: [] } }, `${store}: nothing was written`);
        // the control: a valid word with the tag is found by the same search
        const good = await gql(server, add, { s: store, word: tag, definition: "valid" });
        assertEquals(good.body.errors, undefined, good.text);
        const one = await gql(server, search, { s: store, q: tag });
        assertEquals(one.body.data.words.map((x: { word: string }) => x.word), [tag]);
      } finally {
        await server.stop();
      }
    },
  );
}

// ---------------------------------------------------------------------------
// 2. Body and document limits

/** Sends raw HTTP/1.1 bytes and returns the response head and body as text. */
async function rawHttp(server: ServerProcess, head: string, body: Uint8Array[]): Promise<string> {
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: Number(new URL(server.url).port),
  });
  try {
    await conn.write(new TextEncoder().encode(head));
    for (const part of body) await conn.write(part);
    let text = "";
    const buf = new Uint8Array(16 * 1024);
    while (!/\r\n\r\n[\s\S]*\}\]\}/.test(text)) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return text;
  } finally {
    conn.close();
  }
}

function chunk(bytes: Uint8Array): Uint8Array {
  const head = new TextEncoder().encode(`${bytes.length.toString(16)}\r\n`);
  const out = new Uint8Array(head.length + bytes.length + 2);
  out.set(head);
  out.set(bytes, head.length);
  out.set([13, 10], head.length + bytes.length);
  return out;
}

Deno.test(
  "a 10 MB body is refused with 413 PAYLOAD_TOO_LARGE before it is read whole",
  opts,
  async () => {
    const server = await startServer(SECURITY_OFF);
    try {
      const kib = new Uint8Array(1024).fill(0x20);
      // declared 10 MB, only 1 KiB sent: the answer comes without the rest
      tried("oversized body");
      const declared = await rawHttp(
        server,
        `POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n` +
          `content-length: ${10 * 1024 * 1024}\r\n\r\n`,
        [kib],
      );
      assertStringIncludes(declared, "HTTP/1.1 413");
      assertStringIncludes(declared, '"code":"PAYLOAD_TOO_LARGE"');
      // chunked, 70 KiB of an unfinished body: refused once past the 64 KiB limit
      tried("oversized body");
      const chunked = await rawHttp(
        server,
        `POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n` +
          `transfer-encoding: chunked\r\n\r\n`,
        Array.from({ length: 70 }, () => chunk(kib)),
      );
      assertStringIncludes(chunked, "HTTP/1.1 413");
      assertStringIncludes(chunked, '"code":"PAYLOAD_TOO_LARGE"');
      // an ordinary client sending all 10 MB
      tried("oversized body");
      const big = await send(`${server.url}/graphql`, {
        method: "POST",
        headers: JSON_HEADERS,
        body: JSON.stringify({ query: "{ stores { store } }", variables: { x: "x".repeat(10e6) } }),
      });
      assertRefused(big, 413, "PAYLOAD_TOO_LARGE", "10 MB body");
      // just under the limit is served
      const padded = await gql(server, "{ stores { store } }", { pad: "x".repeat(60_000) });
      assertEquals(padded.status, 200);
      assertEquals(padded.body.data.stores.length, 8);
      assertEquals((await gql(server, `{ words(store: SQLITE) { id } }`)).body.data.words, []);
    } finally {
      await server.stop();
    }
  },
);

/** The limits a refusal names (a document may break several). */
function limitsOf(reply: Reply): string[] {
  return reply.body.errors.map((e: { extensions: { limit?: string } }) => e.extensions.limit);
}

/** A query `levels` deep, through nested inline fragments on a valid field. */
function deepQuery(levels: number): string {
  let inner = "id";
  for (let i = 2; i < levels; i++) inner = `... on Word { ${inner} }`;
  return `{ words(store: SQLITE) { ${inner} } }`;
}

Deno.test(
  "deep, wide, long and costly documents are refused with QUERY_TOO_COMPLEX naming the limit",
  opts,
  async () => {
    const server = await startServer(SECURITY_OFF);
    try {
      let ofType = "name";
      for (let i = 0; i < 12; i++) ofType = `ofType { ${ofType} }`;
      const aliases = (n: number, field = "stores { store }") =>
        `{ ${Array.from({ length: n }, (_, i) => `a${i}: ${field}`).join(" ")} }`;
      const cases: [string, string, string][] = [
        ["30 levels deep", deepQuery(30), "MAX_DEPTH"],
        [
          "deep introspection",
          `{ __type(name: "Word") { fields { type { ${ofType} } } } }`,
          "MAX_DEPTH",
        ],
        ["100 aliases", aliases(100), "MAX_ALIASES"],
        [
          "20 aliased words lists",
          aliases(20, "words(store: SQLITE, limit: 1000) { id }"),
          "MAX_ALIASES",
        ],
        ["5000 repeated fields", `{ stores { ${"store ".repeat(5000)}} }`, "MAX_TOKENS"],
        [
          "300 operations in one document",
          Array.from({ length: 300 }, (_, i) => `query Q${i} { stores { store } }`).join(" "),
          "MAX_TOKENS",
        ],
        [
          "200 directives on one field",
          `{ stores { store ${"@skip(if: false) ".repeat(200)}} }`,
          "MAX_TOKENS",
        ],
        [
          "60 directives",
          `{ stores { ${"store @skip(if: false) ".repeat(60)}} }`,
          "MAX_DIRECTIVES",
        ],
      ];
      for (const [label, query, limit] of cases) {
        tried("over-limit document");
        const reply = await gql(server, query);
        assertRefused(reply, 200, "QUERY_TOO_COMPLEX", label);
        assertOk(limitsOf(reply).includes(limit), `${label}: ${reply.text.slice(0, 300)}`);
      }
      // within the limits: served
      const ok = await gql(server, deepQuery(6));
      assertEquals([ok.status, ok.body.errors], [200, undefined], ok.text);
      const fifteen = await gql(server, aliases(15));
      assertEquals(fifteen.body.errors, undefined, fifteen.text);
    } finally {
      await server.stop();
    }
  },
);

Deno.test(
  "MAX_DEPTH, MAX_ALIASES, MAX_TOKENS, MAX_COST and MAX_DIRECTIVES are honoured",
  opts,
  async () => {
    const server = await startServer({
      ...SECURITY_OFF,
      MAX_DEPTH: "3",
      MAX_ALIASES: "1",
      MAX_TOKENS: "60",
      MAX_COST: "12",
      MAX_DIRECTIVES: "1",
    });
    try {
      const cases: [string, string, string | undefined][] = [
        ["depth 3", deepQuery(3), undefined],
        ["depth 4", deepQuery(4), "MAX_DEPTH"],
        ["one alias", "{ a: stores { store } }", undefined],
        ["two aliases", "{ a: stores { store } b: stores { store } }", "MAX_ALIASES"],
        ["cost within", "{ stores { store healthy } }", undefined],
        [
          "cost over",
          "{ stores { store healthy configured message latencyMs } words(store: SQLITE) { id } }",
          "MAX_COST",
        ],
        ["one directive", "{ stores { store @skip(if: false) } }", undefined],
        [
          "two directives",
          "{ stores { store @skip(if: false) healthy @skip(if: false) } }",
          "MAX_DIRECTIVES",
        ],
        ["61 tokens", `{ stores { ${"store ".repeat(57)}} }`, "MAX_TOKENS"],
      ];
      for (const [label, query, limit] of cases) {
        const reply = await gql(server, query);
        if (!limit) {
          assertEquals(reply.body.errors, undefined, `${label}: ${reply.text}`);
          continue;
        }
        tried("over-limit document");
        assertRefused(reply, 200, "QUERY_TOO_COMPLEX", label);
        assertOk(limitsOf(reply).includes(limit), `${label}: ${reply.text.slice(0, 300)}`);
      }
    } finally {
      await server.stop();
    }
  },
);

// ---------------------------------------------------------------------------
// 3. Access: tokens, CSRF, CORS, GraphiQL, rate limit, headers

const WRITE = "write-token-0123456789abcdef";
const READ = "read-token-0123456789abcdef";
const ADD = `mutation($w: String!) { addWord(store: SQLITE, word: $w, definition: "d") { word } }`;
const LIST = `{ words(store: SQLITE) { word } }`;

Deno.test(
  "WRITE_TOKEN: addWord without the right bearer token is UNAUTHENTICATED and writes nothing; reads stay open",
  opts,
  async () => {
    const server = await startServer({ ...SECURITY_OFF, WRITE_TOKEN: WRITE });
    try {
      const wrong: [string, Record<string, string>][] = [
        ["no header", {}],
        ["empty bearer", { authorization: "Bearer " }],
        ["wrong token", { authorization: "Bearer write-token-0123456789abcdeX" }],
        ["prefix of the token", { authorization: `Bearer ${WRITE.slice(0, -1)}` }],
        ["token plus a character", { authorization: `Bearer ${WRITE}x` }],
        ["no scheme", { authorization: WRITE }],
        ["Basic scheme", { authorization: `Basic ${btoa(`user:${WRITE}`)}` }],
        ["token in a cookie", { cookie: `token=${WRITE}` }],
        ["token in another header", { "x-api-key": WRITE }],
      ];
      for (const [label, headers] of wrong) {
        tried("missing or wrong token");
        const reply = await gql(server, ADD, { w: label }, headers);
        assertRefused(reply, 401, "UNAUTHENTICATED", label);
        assertStringIncludes(reply.headers.get("www-authenticate") ?? "", "Bearer");
      }
      assertEquals((await gql(server, LIST)).body, { data: { words: [] } }, "nothing written");
      const ok = await gql(server, ADD, { w: "allowed" }, { authorization: `Bearer ${WRITE}` });
      assertEquals(ok.body, { data: { addWord: { word: "allowed" } } });
      const lower = await gql(server, ADD, { w: "scheme" }, { authorization: `bearer ${WRITE}` });
      assertEquals(lower.body.errors, undefined, "the scheme is case-insensitive");
      assertEquals((await gql(server, LIST)).body.data.words.length, 2, "reads need no token");
    } finally {
      await server.stop();
    }
  },
);

Deno.test(
  "READ_TOKEN: every operation needs the read or write token; the read token cannot write",
  opts,
  async () => {
    const server = await startServer({ ...SECURITY_OFF, WRITE_TOKEN: WRITE, READ_TOKEN: READ });
    try {
      const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
      for (
        const [label, query, headers] of [
          ["read without token", LIST, {}],
          ["read with wrong token", LIST, bearer("x".repeat(27))],
          ["stores without token", "{ stores { store } }", {}],
          ["introspection without token", "{ __schema { types { name } } }", {}],
          ["parse error without token", "{ {{{", {}],
          ["write with the read token", ADD, bearer(READ)],
        ] as [string, string, Record<string, string>][]
      ) {
        tried("missing or wrong token");
        assertRefused(await gql(server, query, { w: "x" }, headers), 401, "UNAUTHENTICATED", label);
      }
      assertEquals((await gql(server, LIST, {}, bearer(READ))).body, { data: { words: [] } });
      const add = await gql(server, ADD, { w: "w" }, bearer(WRITE));
      assertEquals(add.body.errors, undefined, add.text);
      assertEquals((await gql(server, LIST, {}, bearer(WRITE))).body.data.words, [{ word: "w" }]);
    } finally {
      await server.stop();
    }
  },
);

Deno.test(
  "CSRF: GET needs the CSRF header, simple cross-site POSTs are refused, the page sends the header",
  opts,
  async () => {
    const server = await startServer(SECURITY_OFF);
    try {
      const get = `${server.url}/graphql?query=${encodeURIComponent("{ stores { store } }")}`;
      tried("cross-site request");
      assertRefused(await send(get), 403, "CSRF_PREVENTED", "GET without header");
      const withHeader = await send(get, { headers: { "x-graphql-yoga-csrf": "1" } });
      assertEquals(withHeader.body.data.stores.length, 8);
      // what a cross-site <form> can send: no preflight, so no way in
      for (
        const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
      ) {
        tried("cross-site request");
        const reply = await send(`${server.url}/graphql`, {
          method: "POST",
          headers: { "content-type": type, origin: "https://evil.example" },
          body:
            `{"query":"mutation { addWord(store: SQLITE, word: \\"csrf\\", definition: \\"x\\") { id } }"}`,
        });
        assertRefused(reply, 415, "UNSUPPORTED_MEDIA_TYPE", type);
      }
      assertEquals((await gql(server, LIST)).body.data.words, []);
      const js = await (await fetch(`${server.url}/app.js`)).text();
      assertStringIncludes(js, `"x-graphql-yoga-csrf"`);
    } finally {
      await server.stop();
    }
  },
);

Deno.test(
  "CORS: no origin is allowed by default; CORS_ORIGINS allows exactly those",
  opts,
  async () => {
    const preflight = (url: string, origin: string) =>
      fetch(`${url}/graphql`, {
        method: "OPTIONS",
        headers: {
          origin,
          "access-control-request-method": "POST",
          "access-control-request-headers": "content-type,authorization",
        },
      });
    const closed = await startServer(SECURITY_OFF);
    try {
      tried("cross-origin request");
      const res = await preflight(closed.url, "https://app.example.com");
      await res.body?.cancel();
      assertEquals(res.headers.get("access-control-allow-origin"), null);
      tried("cross-origin request");
      const post = await gql(closed, "{ stores { store } }", undefined, {
        origin: "https://evil.example",
      });
      assertEquals(post.headers.get("access-control-allow-origin"), null);
    } finally {
      await closed.stop();
    }
    const open = await startServer({
      ...SECURITY_OFF,
      CORS_ORIGINS: "https://app.example.com, http://localhost:5173",
    });
    try {
      const ok = await preflight(open.url, "https://app.example.com");
      await ok.body?.cancel();
      assertEquals(ok.status, 204);
      assertEquals(ok.headers.get("access-control-allow-origin"), "https://app.example.com");
      assertStringIncludes(ok.headers.get("access-control-allow-headers") ?? "", "authorization");
      tried("cross-origin request");
      const evil = await preflight(open.url, "https://evil.example");
      await evil.body?.cancel();
      assertEquals(evil.headers.get("access-control-allow-origin"), null);
      const post = await gql(open, "{ stores { store } }", undefined, {
        origin: "http://localhost:5173",
      });
      assertEquals(post.headers.get("access-control-allow-origin"), "http://localhost:5173");
    } finally {
      await open.stop();
    }
  },
);

Deno.test(
  "GRAPHIQL=false: no GraphiQL page or files, introspection refused, no field suggestions",
  opts,
  async () => {
    const server = await startServer({ ...SECURITY_OFF, GRAPHIQL: "false" });
    try {
      for (
        const query of [
          "{ __schema { types { name } } }",
          '{ __type(name: "Word") { fields { name } } }',
          '{ stores { store __type(name: "Query") { name } } }',
        ]
      ) {
        tried("introspection while off");
        assertRefused(await gql(server, query), 200, "GRAPHQL_VALIDATION_FAILED", query);
      }
      tried("introspection while off");
      const typo = await gql(server, "{ stores { stor } }");
      assertOk(!typo.text.includes("Did you mean"), typo.text);
      const page = await send(`${server.url}/graphql`, { headers: { accept: "text/html" } });
      assertOk(!page.text.includes("GraphiQL"), "no GraphiQL page");
      assertEquals((await send(`${server.url}/graphiql/graphiql.js`)).status, 404);
    } finally {
      await server.stop();
    }
  },
);

Deno.test(
  "GraphiQL is served from this origin without inline script, under its own CSP",
  opts,
  async () => {
    const server = await startServer(SECURITY_OFF);
    try {
      const page = await send(`${server.url}/graphql`, { headers: { accept: "text/html" } });
      assertEquals(page.status, 200);
      const csp = page.headers.get("content-security-policy") ?? "";
      assertStringIncludes(csp, "script-src 'self';");
      assertStringIncludes(csp, "frame-ancestors 'none'");
      assertOk(!/https?:\/\//.test(page.text), "no CDN");
      const scripts = page.text.match(/<script\b[^>]*>/g) ?? [];
      for (const tag of scripts) {
        assertOk(/\bsrc="\/graphiql\//.test(tag) || /type="application\/json"/.test(tag), tag);
      }
      const js = await fetch(`${server.url}/graphiql/graphiql.js`);
      assertStringIncludes(js.headers.get("content-type") ?? "", "javascript");
      assertStringIncludes(await js.text(), "YogaGraphiQL");
      const intro = await gql(server, "{ __schema { queryType { name } } }");
      assertEquals(intro.body.data.__schema.queryType.name, "Query");
    } finally {
      await server.stop();
    }
  },
);

Deno.test(
  "RATE_LIMIT_PER_MINUTE: the next mutation is 429 RATE_LIMITED with Retry-After; reads go on",
  opts,
  async () => {
    const server = await startServer({ RATE_LIMIT_PER_MINUTE: "3" });
    try {
      for (let i = 0; i < 3; i++) {
        const ok = await gql(server, ADD, { w: `w${i}` });
        assertEquals([ok.status, ok.body.errors], [200, undefined], ok.text);
      }
      for (let i = 0; i < 5; i++) {
        tried("mutation over the rate limit");
        const reply = await gql(server, ADD, { w: `over${i}` });
        assertRefused(reply, 429, "RATE_LIMITED", `mutation ${i + 4}`);
        const retry = Number(reply.headers.get("retry-after"));
        assertOk(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
      }
      const list = await gql(server, LIST);
      assertEquals(list.body.data.words.map((w: { word: string }) => w.word), ["w0", "w1", "w2"]);
    } finally {
      await server.stop();
    }
  },
);

Deno.test(
  "security headers: CSP without inline script, no framing, nosniff, no referrer",
  opts,
  async () => {
    const server = await startServer(SECURITY_OFF);
    try {
      for (const path of ["/", "/app.js", "/style.css", "/healthz", "/readyz", "/no-such-file"]) {
        const res = await fetch(`${server.url}${path}`);
        await res.body?.cancel();
        const csp = res.headers.get("content-security-policy") ?? "";
        assertStringIncludes(csp, "script-src 'self'", path);
        assertOk(!/script-src[^;]*unsafe/.test(csp), `${path}: ${csp}`);
        assertStringIncludes(csp, "frame-ancestors 'none'", path);
        assertStringIncludes(csp, "object-src 'none'", path);
        assertEquals(res.headers.get("x-frame-options"), "DENY", path);
        assertEquals(res.headers.get("x-content-type-options"), "nosniff", path);
        assertEquals(res.headers.get("referrer-policy"), "no-referrer", path);
      }
      const api = await gql(server, "{ stores { store } }");
      assertStringIncludes(api.headers.get("content-security-policy") ?? "", "default-src 'self'");
      assertEquals(api.headers.get("x-content-type-options"), "nosniff");
    } finally {
      await server.stop();
    }
  },
);

// ---------------------------------------------------------------------------
// 4. Secrets while stores fail

const STACK = [/\n\s+at \S/, /\bat .+\.(ts|js|mjs|cjs):\d+/];

/** Runs reads, writes and probes against every store of `server` and returns every body. */
async function exercise(server: ServerProcess, stores: StoreName[]): Promise<string[]> {
  const bodies: string[] = [];
  for (const store of stores) {
    const s = { s: store };
    bodies.push((await gql(server, `query($s: Store!) { words(store: $s) { id } }`, s)).text);
    bodies.push(
      (await gql(
        server,
        `mutation($s: Store!) { addWord(store: $s, word: "w", definition: "d") { id } }`,
        s,
      )).text,
    );
    bodies.push(
      (await gql(server, `query($s: Store!) { words(store: $s, search: "%") { id } }`, s)).text,
    );
    tried("request while a store fails", 3);
  }
  bodies.push((await gql(server, "{ stores { store configured healthy message } }")).text);
  bodies.push((await send(`${server.url}/readyz`)).text);
  bodies.push((await gql(server, "{ stores { nope } }")).text);
  bodies.push(
    (await send(`${server.url}/graphql`, { method: "POST", headers: JSON_HEADERS, body: "{" }))
      .text,
  );
  return bodies;
}

function assertNoSecret(texts: string[], secrets: string[], label: string): void {
  for (const text of texts) {
    for (const secret of secrets) {
      assertOk(
        !text.includes(secret),
        `${label}: a secret leaked in ${JSON.stringify(text.slice(0, 400))}`,
      );
    }
    for (const pattern of STACK) {
      const m = text.match(pattern);
      assertOk(
        !m,
        `${label}: a stack trace leaked: ${m?.[0]} in ${JSON.stringify(text.slice(0, 400))}`,
      );
    }
  }
}

Deno.test(
  "stores failing behind closed ports: no password, URL or stack trace in any response or log line",
  opts,
  async () => {
    const urls: Partial<Record<StoreName, string>> = {
      MONGODB: "mongodb://gt:pw-mongo-5521@127.0.0.1:9/grand_tour",
      POSTGRESQL: "postgres://gt:pw-pg-6630@127.0.0.1:9/grand_tour",
      MYSQL: "mysql://gt:pw-my-7741@127.0.0.1:9/grand_tour",
      SCYLLA: "cassandra://gt:pw-cql-8852@127.0.0.1:9",
      ELASTICSEARCH: "http://gt:pw-es-9963@127.0.0.1:9",
      REDIS: "redis://gt:pw-redis-1074@127.0.0.1:9/0",
      RABBITMQ: "amqp://gt:pw-amqp-2185@127.0.0.1:9/%2F",
    };
    const env: Record<string, string> = {
      CONNECT_TIMEOUT_MS: "300",
      RECONNECT_MAX_MS: "500",
      WRITE_TOKEN: WRITE,
      RATE_LIMIT_PER_MINUTE: "0",
    };
    for (const [store, url] of Object.entries(urls)) env[`${store}_URL`] = url;
    const server = await startServer(env);
    try {
      const stores = Object.keys(urls) as StoreName[];
      const bodies = await exercise(server, stores);
      bodies.push(
        (await gql(server, ADD, { w: "x" }, { authorization: "Bearer nope-nope-nope-nope" })).text,
      );
      await new Promise((r) => setTimeout(r, 1500)); // reconnect attempts log meanwhile
      const secrets = [
        WRITE,
        ...Object.values(urls),
        ...Object.values(urls).map((u) => new URL(u).password),
        ...Object.values(urls).map((u) => `${new URL(u).username}:${new URL(u).password}`),
      ];
      assertNoSecret([...bodies, server.output()], secrets, "closed ports");
      assertStringIncludes(server.output(), "cannot connect", "the log does report the failures");
    } finally {
      await server.stop();
    }
  },
);

Deno.test(
  "real matrix servers with a wrong password: no password, URL or stack trace anywhere",
  opts,
  async () => {
    const env: Record<string, string> = {
      CONNECT_TIMEOUT_MS: "1500",
      RECONNECT_MAX_MS: "1000",
      RATE_LIMIT_PER_MINUTE: "0",
    };
    const secrets: string[] = [];
    const stores: StoreName[] = [];
    for (const store of STORE_NAMES) {
      const config = store === "SQLITE" ? undefined : storeConfig(store);
      if (!config || store === "SCYLLA" && !config.url.includes("@")) continue;
      let url: URL;
      try {
        url = new URL(config.url);
      } catch {
        continue;
      }
      if (!url.password) continue;
      secrets.push(config.url, url.password, decodeURIComponent(url.password));
      url.password = `wrong-${crypto.randomUUID().slice(0, 8)}`;
      secrets.push(url.toString(), url.password);
      env[`${store}_URL`] = url.toString();
      if (store === "SCYLLA") env.SCYLLA_DATACENTER = testEnv.SCYLLA_DATACENTER ?? "datacenter1";
      stores.push(store);
    }
    if (stores.length === 0) {
      console.warn("\n!!! no matrix store with a password is configured: check skipped\n");
      return;
    }
    const server = await startServer(env);
    try {
      await new Promise((r) => setTimeout(r, 3000)); // let every driver try and fail to log in
      const bodies = await exercise(server, stores);
      await new Promise((r) => setTimeout(r, 1500));
      assertNoSecret([...bodies, server.output()], secrets, "wrong password");
      console.log(`wrong password tried against: ${stores.join(", ")}`);
    } finally {
      await server.stop();
    }
  },
);

Deno.test("summary: hostile inputs tried", () => {
  const rows = [...tally].map(([category, n]) => `  ${String(n).padStart(4)}  ${category}`);
  const per = [...perStore].map(([store, n]) => `${store} ${n}`).join(", ");
  const total = [...tally.values()].reduce((a, b) => a + b, 0);
  console.log(`\nhostile inputs tried: ${total}\n${rows.join("\n")}\n  addWord per store: ${per}`);
  assertOk(total > 0);
});
