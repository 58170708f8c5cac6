/**
 * `TRUSTED_PROXIES` (server/client_address.ts): which address is the client
 * behind proxies, and that the write rate limit counts per that client, on
 * the Hono app in-process (the TCP peer given as Deno's `remoteAddr`).
 */
import { assertEquals } from "./support/assert.ts";
import { testRegistry, uniqueTag } from "./support/gateway.ts";
import { createApp } from "../server/app.ts";
import { budgetKey, canonicalRange, TrustedProxies } from "../server/client_address.ts";
import { parseSecurity } from "../server/config.ts";
import { createGraphQL } from "../server/graphql.ts";

const PROXIES = ["10.0.0.0/8", "2001:db8:ffff::/48"].map((r) => canonicalRange(r)!);

Deno.test("an untrusted peer is the client, whatever X-Forwarded-For it sends", () => {
  const t = new TrustedProxies(PROXIES);
  assertEquals(t.clientOf("203.0.113.9", "198.51.100.1"), "203.0.113.9");
  assertEquals(t.clientOf("203.0.113.9", "10.0.0.1, 198.51.100.1"), "203.0.113.9");
  assertEquals(t.clientOf("2001:db8::1", "198.51.100.1"), "2001:db8::1");
  assertEquals(new TrustedProxies([]).clientOf("10.0.0.1", "198.51.100.1"), "10.0.0.1");
});

Deno.test("a trusted chain resolves to the rightmost address that is not a trusted proxy", () => {
  const t = new TrustedProxies(PROXIES);
  // The client wrote 192.0.2.66 itself; 198.51.100.7 is what the first trusted proxy saw.
  const chain = "192.0.2.66, 198.51.100.7, 10.1.1.1, 10.2.2.2";
  assertEquals(t.clientOf("10.0.0.1", chain), "198.51.100.7");
  assertEquals(t.clientOf("10.0.0.1", "192.0.2.66,198.51.100.7"), "198.51.100.7");
  // Several X-Forwarded-For headers arrive joined by commas.
  assertEquals(t.clientOf("10.0.0.1", "192.0.2.66, 198.51.100.7, 10.1.1.1"), "198.51.100.7");
  // A trusted peer without the header, or with an empty one, is the client.
  assertEquals(t.clientOf("10.0.0.1", null), "10.0.0.1");
  assertEquals(t.clientOf("10.0.0.1", " "), "10.0.0.1");
  // Every hop trusted: the leftmost is the client (a service inside the proxies' network).
  assertEquals(t.clientOf("10.0.0.1", "10.9.9.9, 10.1.1.1"), "10.9.9.9");
  // Garbage ends the walk at the trusted hop that forwarded it.
  assertEquals(t.clientOf("10.0.0.1", "198.51.100.7, unknown, 10.1.1.1"), "10.1.1.1");
  assertEquals(t.clientOf("10.0.0.1", "198.51.100.7, 10.1"), "10.0.0.1");
  // Ports some load balancers add, and IPv6 hops.
  assertEquals(t.clientOf("10.0.0.1", "198.51.100.7:5123"), "198.51.100.7");
  assertEquals(t.clientOf("10.0.0.1", "[2001:db8:1::5]:443"), "2001:db8:1::5");
  assertEquals(t.clientOf("2001:db8:ffff::9", "2001:db8:ffff::8, 2001:DB8:2::7"), "2001:db8:2::7");
  // Unknown peer (in-process call): unknown client.
  assertEquals(t.clientOf(undefined, "198.51.100.7"), undefined);
});

Deno.test("IPv4-mapped IPv6 is the IPv4 address it carries, as peer, hop and range", () => {
  const t = new TrustedProxies(PROXIES);
  assertEquals(t.clientOf("::ffff:10.0.0.1", "198.51.100.7"), "198.51.100.7");
  assertEquals(t.clientOf("10.0.0.1", "::ffff:198.51.100.7"), "198.51.100.7");
  assertEquals(t.clientOf("::ffff:10.0.0.1", "::ffff:10.3.3.3, 198.51.100.7"), "198.51.100.7");
  assertEquals(t.clientOf("::ffff:203.0.113.9", "198.51.100.7"), "203.0.113.9");
  const mapped = new TrustedProxies([canonicalRange("::ffff:10.0.0.0/104")!]);
  assertEquals(canonicalRange("::ffff:10.0.0.0/104"), "10.0.0.0/8");
  assertEquals(mapped.clientOf("10.0.0.1", "198.51.100.7"), "198.51.100.7");
});

Deno.test("a client is counted by its IPv4 address or its IPv6 /64", () => {
  assertEquals(budgetKey("198.51.100.7"), "198.51.100.7");
  assertEquals(budgetKey("::ffff:198.51.100.7"), "198.51.100.7");
  assertEquals(budgetKey("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
  assertEquals(budgetKey("2001:db8:1:2:bbbb::2"), "2001:db8:1:2::/64");
  assertEquals(budgetKey("2001:db8:1:3::1"), "2001:db8:1:3::/64");
});

/** The whole app in-process with a limit of 2 writes a minute behind `TRUSTED_PROXIES`. */
async function withApp(
  trustedProxies: string,
  fn: (write: (peer: string, forwardedFor?: string) => Promise<number>) => Promise<void>,
): Promise<void> {
  const registry = testRegistry();
  const security = {
    ...parseSecurity({ TRUSTED_PROXIES: trustedProxies }),
    rateLimitPerMinute: 2,
  };
  const graphql = createGraphQL({ registry, graphiql: false, security });
  const app = createApp({
    registry,
    graphql,
    graphiql: false,
    security,
    bodyTimeout: (_c, next) => next(),
  });
  const tag = uniqueTag();
  let n = 0;
  try {
    await registry.embeddedReady();
    await fn(async (peer, forwardedFor) => {
      const headers = new Headers({ "content-type": "application/json" });
      if (forwardedFor !== undefined) headers.set("x-forwarded-for", forwardedFor);
      const query =
        `mutation { addWord(store: SQLITE, word: "${tag}-${n++}", definition: "d") { id } }`;
      const res = await app.fetch(
        new Request("http://gateway/graphql", {
          method: "POST",
          headers,
          body: JSON.stringify({ query }),
        }),
        { remoteAddr: { transport: "tcp", hostname: peer, port: 40000 } },
      );
      await res.body?.cancel();
      return res.status;
    });
  } finally {
    await graphql.dispose();
    await registry.close();
  }
}

Deno.test("behind a trusted proxy, two clients get separate budgets", async () => {
  await withApp("10.0.0.0/8", async (write) => {
    const proxy = "10.0.0.1";
    assertEquals(await write(proxy, "198.51.100.1"), 200);
    assertEquals(await write(proxy, "198.51.100.1"), 200);
    assertEquals(await write(proxy, "198.51.100.1"), 429, "the first client's third write");
    // The second client behind the same proxy still has a whole budget.
    assertEquals(await write(proxy, "198.51.100.2"), 200);
    assertEquals(await write("::ffff:10.0.0.2", "198.51.100.2"), 200, "through another proxy");
    assertEquals(await write(proxy, "198.51.100.2"), 429, "the second client's third write");
    // A client spoofing an address left of its own is counted as its own.
    assertEquals(await write(proxy, "198.51.100.3, 198.51.100.1"), 429, "spoofed left entry");
  });
});

Deno.test("X-Forwarded-For from an untrusted peer is ignored: the peer's budget is spent", async () => {
  await withApp("10.0.0.0/8", async (write) => {
    const peer = "203.0.113.5";
    assertEquals(await write(peer, "198.51.100.1"), 200);
    assertEquals(await write(peer, "198.51.100.2"), 200);
    assertEquals(await write(peer, "198.51.100.3"), 429, "a third 'client' from the same peer");
    assertEquals(await write(peer), 429);
  });
  await withApp("", async (write) => {
    // Without TRUSTED_PROXIES even a private-address proxy is the client.
    assertEquals(await write("10.0.0.1", "198.51.100.1"), 200);
    assertEquals(await write("10.0.0.1", "198.51.100.2"), 200);
    assertEquals(await write("10.0.0.1", "198.51.100.3"), 429);
  });
});
