/**
 * Slow clients against the real server process, over raw sockets: a request
 * body that stops arriving is answered 408 `REQUEST_TIMEOUT`, and SIGTERM
 * ends the process within `SHUTDOWN_DRAIN_MS` + 5 s whatever the clients
 * hold open.
 */
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import { type ServerProcess, startServer } from "./support/gateway.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const IDLE_MS = 500;
const TOTAL_MS = 2000;
const DRAIN_MS = 200;
/** What SIGTERM may take: the drain plus 5 s. */
const EXIT_LIMIT_MS = DRAIN_MS + 5000;
/** Slack for timers, scheduling and loopback I/O. */
const SLACK_MS = 1000;

const SETTINGS = {
  BODY_IDLE_TIMEOUT_MS: String(IDLE_MS),
  BODY_TIMEOUT_MS: String(TOTAL_MS),
  SHUTDOWN_DRAIN_MS: String(DRAIN_MS),
};
/** For the shutdown tests: bodies are still arriving when SIGTERM comes. */
const SHUTDOWN_SETTINGS = { ...SETTINGS, BODY_IDLE_TIMEOUT_MS: "10000", BODY_TIMEOUT_MS: "30000" };

const QUERY = JSON.stringify({ query: "{ words(store: SQLITE) { id } }" });

/** Headers of a POST to `/graphql` with `framing` (Content-Length or Transfer-Encoding). */
const post = (framing: string) =>
  `POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n` +
  `Accept: application/json\r\n${framing}\r\n\r\n`;

/** An HTTP/1.1 response as parsed from the wire. */
interface RawResponse {
  status: number;
  /** Lower-case name to every value sent. */
  headers: Map<string, string[]>;
  body: string;
}

/** A raw TCP connection to the server that records everything it receives. */
class RawClient {
  readonly #conn: Deno.Conn;
  #received = "";
  #closed = false;
  #changed = Promise.withResolvers<void>();

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.#pump();
  }

  static async open(server: ServerProcess): Promise<RawClient> {
    const port = Number(new URL(server.url).port);
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Everything received so far. */
  get received(): string {
    return this.#received;
  }

  async send(text: string): Promise<void> {
    await this.#conn.write(new TextEncoder().encode(text));
  }

  /** The first complete response, or undefined if none came within `ms`. */
  response(ms: number): Promise<RawResponse | undefined> {
    return this.#until(() => parseResponse(this.#received), ms);
  }

  /** Whether the server closed the socket (a read returned end of stream) within `ms`. */
  async closed(ms: number): Promise<boolean> {
    return await this.#until(() => this.#closed || undefined, ms) ?? false;
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // closed already
    }
  }

  async #pump(): Promise<void> {
    const buffer = new Uint8Array(16 * 1024);
    const decoder = new TextDecoder();
    for (;;) {
      const n = await this.#conn.read(buffer).catch(() => null);
      if (n === null) this.#closed = true;
      else this.#received += decoder.decode(buffer.subarray(0, n), { stream: true });
      this.#changed.resolve();
      this.#changed = Promise.withResolvers<void>();
      if (n === null) return;
    }
  }

  /** Waits, woken by each read, until `found` returns a value or `ms` pass. */
  async #until<T>(found: () => T | undefined, ms: number): Promise<T | undefined> {
    const deadline = Date.now() + ms;
    for (let value = found();; value = found()) {
      if (value !== undefined || this.#closed || Date.now() >= deadline) return value;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#changed.promise,
        new Promise((r) => timer = setTimeout(r, deadline - Date.now())),
      ]);
      clearTimeout(timer);
    }
  }
}

/** Parses the first response in `text`; undefined while it is incomplete. */
function parseResponse(text: string): RawResponse | undefined {
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const [statusLine, ...lines] = text.slice(0, end).split("\r\n");
  const headers = new Map<string, string[]>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim().toLowerCase();
    headers.set(name, [...headers.get(name) ?? [], line.slice(colon + 1).trim()]);
  }
  const rest = text.slice(end + 4);
  const length = headers.get("content-length")?.[0];
  let body: string | undefined;
  if (length !== undefined) body = rest.length >= Number(length) ? rest : undefined;
  else if (headers.get("transfer-encoding")?.[0] === "chunked") body = dechunk(rest);
  else body = "";
  if (body === undefined) return undefined;
  return { status: Number(statusLine.split(" ")[1]), headers, body };
}

/** The payload of a complete chunked body; undefined while the last chunk is missing. */
function dechunk(text: string): string | undefined {
  let body = "";
  for (let at = 0;;) {
    const lineEnd = text.indexOf("\r\n", at);
    if (lineEnd < 0) return undefined;
    const size = parseInt(text.slice(at, lineEnd), 16);
    if (size === 0) return text.indexOf("\r\n", lineEnd + 2) < 0 ? undefined : body;
    if (text.length < lineEnd + 2 + size + 2) return undefined;
    body += text.slice(lineEnd + 2, lineEnd + 2 + size);
    at = lineEnd + 2 + size + 2;
  }
}

/** Asserts a GraphQL-shaped refusal with `status`, `code` and `Connection: close`. */
function assertRefusal(res: RawResponse | undefined, status: number, code: string): void {
  assertOk(res, "no complete response");
  assertEquals(res.status, status, res.body);
  assertOk(res.headers.get("connection")?.includes("close"), "Connection: close");
  const body = JSON.parse(res.body);
  assertEquals(body.errors?.[0]?.extensions?.code, code, res.body);
}

/** Sends SIGTERM; returns the exit status and the time it took, with SIGKILL only after the limit. */
async function timedStop(
  server: ServerProcess,
): Promise<{ status: Deno.CommandStatus; ms: number }> {
  const start = performance.now();
  const status = await server.stop("SIGTERM", EXIT_LIMIT_MS);
  return { status, ms: performance.now() - start };
}

/** Asserts the process exited by itself, with 0, within the limit. */
function assertCleanExit({ status, ms }: { status: Deno.CommandStatus; ms: number }): void {
  assertEquals(status.signal, null, `SIGKILL was needed after ${EXIT_LIMIT_MS} ms`);
  assertEquals(status.code, 0);
  assertOk(ms < EXIT_LIMIT_MS, `exit took ${ms.toFixed(0)} ms`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test(
  "a Content-Length body that stops arriving is answered 408 REQUEST_TIMEOUT with Connection: close, and its connection is not reused",
  opts,
  async () => {
    const server = await startServer(SETTINGS);
    const client = await RawClient.open(server);
    try {
      const start = performance.now();
      await client.send(post("Content-Length: 100") + `{"query":`);
      const res = await client.response(IDLE_MS + SLACK_MS);
      const ms = performance.now() - start;
      console.log(`  408 after ${ms.toFixed(0)} ms (BODY_IDLE_TIMEOUT_MS=${IDLE_MS})`);
      assertRefusal(res, 408, "REQUEST_TIMEOUT");
      assertOk(ms >= IDLE_MS - 50, `answered after ${ms.toFixed(0)} ms, before the idle limit`);
      // Deno 2.9 keeps the socket until the client sends or closes (or the server stops): the next
      // byte ends it, and no second request is read from it.
      await client.send("GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n");
      assertOk(await client.closed(SLACK_MS), "the socket is closed once the client sends again");
      assertEquals(client.received.match(/^HTTP\/1\.1 /gm)?.length, 1, "one response only");
    } finally {
      client.close();
      await server.stop();
    }
  },
);

Deno.test(
  "a chunked body that stops arriving is answered 408 REQUEST_TIMEOUT with Connection: close",
  opts,
  async () => {
    const server = await startServer(SETTINGS);
    const client = await RawClient.open(server);
    try {
      const start = performance.now();
      await client.send(post("Transfer-Encoding: chunked") + `9\r\n{"query":\r\n`);
      const res = await client.response(IDLE_MS + SLACK_MS);
      const ms = performance.now() - start;
      console.log(`  408 after ${ms.toFixed(0)} ms (BODY_IDLE_TIMEOUT_MS=${IDLE_MS})`);
      assertRefusal(res, 408, "REQUEST_TIMEOUT");
      assertOk(ms >= IDLE_MS - 50, `answered after ${ms.toFixed(0)} ms, before the idle limit`);
      await client.send("0\r\n\r\n");
      assertOk(await client.closed(SLACK_MS), "the socket is closed once the client sends again");
    } finally {
      client.close();
      await server.stop();
    }
  },
);

Deno.test(
  "a body trickling in faster than the idle limit is answered 408 once BODY_TIMEOUT_MS is spent",
  opts,
  async () => {
    const server = await startServer(SETTINGS);
    const client = await RawClient.open(server);
    try {
      const start = performance.now();
      await client.send(post(`Content-Length: ${QUERY.length}`));
      let res: RawResponse | undefined;
      for (const byte of QUERY) {
        await client.send(byte);
        if ((res = await client.response(IDLE_MS / 2))) break;
      }
      const ms = performance.now() - start;
      console.log(`  408 after ${ms.toFixed(0)} ms (BODY_TIMEOUT_MS=${TOTAL_MS})`);
      assertRefusal(res, 408, "REQUEST_TIMEOUT");
      assertOk(ms >= TOTAL_MS - 50 && ms < TOTAL_MS + SLACK_MS, `answered after ${ms} ms`);
      assertStringIncludes(res!.body, `within ${TOTAL_MS} ms`);
    } finally {
      client.close();
      await server.stop();
    }
  },
);

Deno.test(
  "a body sent slowly, with pauses shorter than BODY_IDLE_TIMEOUT_MS, is served",
  opts,
  async () => {
    const server = await startServer(SETTINGS);
    const client = await RawClient.open(server);
    try {
      await client.send(post(`Content-Length: ${QUERY.length}`));
      const pieces = 4;
      const size = Math.ceil(QUERY.length / pieces);
      for (let i = 0; i < pieces; i++) {
        await sleep(IDLE_MS * 0.6);
        await client.send(QUERY.slice(i * size, (i + 1) * size));
      }
      const res = await client.response(SLACK_MS);
      assertOk(res, "no response");
      assertEquals(res.status, 200, res.body);
      assertEquals(JSON.parse(res.body), { data: { words: [] } });
    } finally {
      client.close();
      await server.stop();
    }
  },
);

Deno.test(
  "SIGTERM with a half-sent body open answers it 503 SHUTTING_DOWN and exits 0 within SHUTDOWN_DRAIN_MS + 5 s",
  opts,
  async () => {
    const server = await startServer(SHUTDOWN_SETTINGS);
    const client = await RawClient.open(server);
    try {
      await client.send(post("Content-Length: 100") + `{"query":`);
      await sleep(100);
      const exit = await timedStop(server);
      console.log(
        `  exited ${exit.ms.toFixed(0)} ms after SIGTERM (SHUTDOWN_DRAIN_MS=${DRAIN_MS})`,
      );
      assertCleanExit(exit);
      assertRefusal(await client.response(0), 503, "SHUTTING_DOWN");
      assertOk(await client.closed(SLACK_MS), "socket closed");
      assertStringIncludes(server.output(), "closing stores");
    } finally {
      client.close();
    }
  },
);

Deno.test(
  "SIGTERM with 100 half-sent bodies open exits 0 within SHUTDOWN_DRAIN_MS + 5 s",
  opts,
  async () => {
    const server = await startServer(SHUTDOWN_SETTINGS);
    const clients = await Promise.all(Array.from({ length: 100 }, () => RawClient.open(server)));
    try {
      await Promise.all(clients.map((c) => c.send(post("Content-Length: 100") + `{"query":`)));
      await sleep(100);
      const exit = await timedStop(server);
      console.log(
        `  exited ${exit.ms.toFixed(0)} ms after SIGTERM (SHUTDOWN_DRAIN_MS=${DRAIN_MS})`,
      );
      assertCleanExit(exit);
      const answered = await Promise.all(clients.map((c) => c.response(0)));
      assertEquals(answered.filter((r) => r?.status === 503).length, clients.length);
    } finally {
      for (const c of clients) c.close();
    }
  },
);

Deno.test(
  "SIGTERM exits 0 within SHUTDOWN_DRAIN_MS + 5 s while clients hold an answered stalled body, an idle keep-alive connection, half-sent headers and an unread response",
  opts,
  async () => {
    const server = await startServer({ ...SETTINGS, GRAPHIQL: "true" });
    const stalled = await RawClient.open(server);
    const idle = await RawClient.open(server);
    const halfHeaders = await RawClient.open(server);
    const clients = [stalled, idle, halfHeaders];
    try {
      await stalled.send(post("Content-Length: 100") + `{"query":`);
      assertRefusal(await stalled.response(IDLE_MS + SLACK_MS), 408, "REQUEST_TIMEOUT");
      await idle.send("GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n");
      assertEquals((await idle.response(SLACK_MS))?.status, 200);
      await halfHeaders.send("POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Ty");
      // GraphiQL's bundle is megabytes: more than the socket buffers hold for a client that never reads.
      const port = Number(new URL(server.url).port);
      const reader = await Deno.connect({ hostname: "127.0.0.1", port });
      await reader.write(
        new TextEncoder().encode("GET /graphiql/graphiql.js HTTP/1.1\r\nHost: gateway\r\n\r\n"),
      );
      await sleep(300);
      const exit = await timedStop(server);
      console.log(
        `  exited ${exit.ms.toFixed(0)} ms after SIGTERM (SHUTDOWN_DRAIN_MS=${DRAIN_MS})`,
      );
      reader.close();
      assertCleanExit(exit);
      for (const c of [stalled, idle, halfHeaders]) assertOk(await c.closed(SLACK_MS));
    } finally {
      for (const c of clients) c.close();
    }
  },
);
