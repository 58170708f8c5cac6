/**
 * `EVENTS_URL` and the subscription settings (server/config.ts
 * `parseEvents`), and the redaction of `EVENTS_URL` in the gateway's log.
 */
import { assertEquals, assertOk, assertThrows } from "./support/assert.ts";
import { ConfigError, parseEvents } from "../server/config.ts";
import { startServer } from "./support/gateway.ts";

const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

Deno.test("parseEvents: defaults, the caps, EVENTS_URL with its CA", () => {
  const d = parseEvents({});
  assertEquals([d.redis, d.perClient, d.total, d.maxQueue, d.pingMs], [
    undefined,
    10,
    1000,
    256,
    10_000,
  ]);
  const c = parseEvents(
    {
      EVENTS_URL: "rediss://:pw@events:6380/0",
      EVENTS_CA_CERT: "/ca.pem",
      SUBSCRIPTIONS_PER_CLIENT: "3",
      SUBSCRIPTIONS_MAX: "30",
    },
    () => PEM,
  );
  assertEquals([c.redis?.url, c.redis?.caCert, c.perClient, c.total], [
    "rediss://:pw@events:6380/0",
    PEM,
    3,
    30,
  ]);
});

Deno.test("parseEvents: a wrong scheme, a read URL, an orphan CA or a bad cap stop start-up, URL unquoted", () => {
  for (
    const env of [
      { EVENTS_URL: "http://:secretpw@events:6379" },
      { EVENTS_URL: "redis://events:6379", EVENTS_READ_URL: "redis://r:6379" },
      { EVENTS_CA_CERT: "/ca.pem" },
      { SUBSCRIPTIONS_PER_CLIENT: "0" },
      { SUBSCRIPTIONS_MAX: "many" },
    ]
  ) {
    const e = assertThrows(() => parseEvents(env, () => PEM), ConfigError);
    assertOk(!e.message.includes("secretpw"), e.message);
  }
});

Deno.test({
  name: "an unreachable EVENTS_URL: the gateway serves, and its log never shows the URL's password",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const server = await startServer({
      EVENTS_URL: "redis://:hunter2-events-secret@127.0.0.1:1/0",
      CONNECT_TIMEOUT_MS: "200",
    });
    try {
      const res = await fetch(`${server.url}/healthz`);
      assertEquals(res.status, 200);
      await res.body?.cancel();
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      const status = await server.stop();
      assertOk(status.success, server.output().slice(-2000));
      assertOk(server.output().includes("events: "), server.output());
      assertOk(!server.output().includes("hunter2-events-secret"), server.output());
    }
  },
});
