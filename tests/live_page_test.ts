/**
 * The page's live updates in headless Chromium on the real server (SQLite
 * only): it subscribes to the selected store, shows "Live", and lists,
 * edits and removes words that another client adds, edits and deletes,
 * without a reload; after the gateway restarts it shows "Reconnecting…",
 * then "Live" again, and re-reads the list (pub/sub replays nothing). With
 * two instances sharing a Redis (`EVENTS_URL`) and one SQLite file, a word
 * added through the other instance appears, and an idle page sends nothing
 * but its one open subscription.
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import { browserTest, gatewayData, screenshot, watch } from "./support/browser.ts";
import { startServer, uniqueTag } from "./support/gateway.ts";
import { storeConfig, testEnv } from "./support/env.ts";
import { ADD, DELETE, UPDATE } from "./support/words.ts";

browserTest("the page follows another client's writes live", async (browser) => {
  const server = await startServer();
  try {
    const page = await browser.newPage();
    const seen = watch(page);
    page.setDefaultTimeout(15_000);
    await page.goto(server.url);
    await page.waitForFunction(() =>
      document.getElementById("live-status")?.dataset.state === "live"
    );
    assertEquals(await page.locator("#live-status").innerText(), "Live");
    const word = uniqueTag();
    const { addWord } = await gatewayData<{ addWord: { id: string } }>(server.url, ADD, {
      store: "SQLITE",
      word,
      definition: "first",
    });
    const shows = (line: string) =>
      page.waitForFunction(
        (l) =>
          [...document.querySelectorAll("#words li")].some((li) =>
            `${li.querySelector(".word")?.textContent}: ${
              li.querySelector(".definition")?.textContent
            }` === l
          ),
        line,
      );
    await shows(`${word}: first`);
    await gatewayData(server.url, UPDATE, {
      store: "SQLITE",
      id: addWord.id,
      definition: "second",
    });
    await shows(`${word}: second`);
    await screenshot(page, "browser-live");
    await gatewayData(server.url, DELETE, { store: "SQLITE", id: addWord.id });
    await page.waitForFunction(
      (w) => ![...document.querySelectorAll("#words li .word")].some((e) => e.textContent === w),
      word,
    );
    assertEquals(seen.errors, []);
    assertEquals(seen.cspViolations, []);
  } finally {
    await server.stop();
  }
});

browserTest(
  "after the gateway restarts the page reconnects and re-reads the list",
  async (browser) => {
    const dir = await Deno.makeTempDir({ prefix: "live-page-" });
    const env = { SQLITE_PATH: `${dir}/words.db`, SHUTDOWN_DRAIN_MS: "0" };
    let server = await startServer(env);
    const port = new URL(server.url).port;
    try {
      const page = await browser.newPage();
      const seen = watch(page);
      page.setDefaultTimeout(20_000);
      await page.goto(server.url);
      const state = (s: string) =>
        page.waitForFunction((s) => document.getElementById("live-status")?.dataset.state === s, s);
      await state("live");
      assertOk((await server.stop()).success);
      await state("reconnecting");
      // A word written while the page is not subscribed, by an instance it does not talk to:
      // no event reaches the page for it, so only the re-read after reconnecting can show it.
      const other = await startServer(env);
      const word = uniqueTag();
      await gatewayData(other.url, ADD, { store: "SQLITE", word, definition: "while away" });
      await other.stop();
      server = await startServer({ ...env, PORT: port });
      await state("live");
      await page.waitForFunction(
        (w) => [...document.querySelectorAll("#words li .word")].some((e) => e.textContent === w),
        word,
      );
      assertEquals(seen.errors, []);
    } finally {
      await server.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);

/** The Redis two instances share: the matrix's (`REDIS_URL`), or `EVENTS_TEST_REDIS_URL`. */
const EVENTS_REDIS = testEnv.EVENTS_TEST_REDIS_URL ?? storeConfig("REDIS")?.url;

browserTest(
  "a word added through another instance appears live; idle, the page sends no request",
  async (browser) => {
    const dir = await Deno.makeTempDir({ prefix: "live-page-" });
    // One SQLite file for both (the list the page re-reads is A's); pings every second.
    const env = {
      SQLITE_PATH: `${dir}/words.db`,
      EVENTS_URL: EVENTS_REDIS!,
      SUBSCRIPTION_PING_MS: "1000",
    };
    const a = await startServer(env);
    const b = await startServer(env);
    try {
      const page = await browser.newPage();
      const seen = watch(page);
      page.setDefaultTimeout(15_000);
      const requests: string[] = [];
      page.on("request", (r) => requests.push(`${r.method()} ${new URL(r.url()).pathname}`));
      await page.goto(a.url);
      await page.waitForFunction(() =>
        document.getElementById("live-status")?.dataset.state === "live"
      );
      // The list and the store list are read once the page is live (the subscription stays open,
      // so the network is never idle in Playwright's sense).
      await new Promise((r) => setTimeout(r, 1_500));
      const before = requests.length;
      await new Promise((r) => setTimeout(r, 5_000)); // five keep-alives on the open stream
      assertEquals(requests.slice(before), [], "requests while idle");
      const word = uniqueTag();
      await gatewayData(b.url, ADD, { store: "SQLITE", word, definition: "through B" });
      await page.waitForFunction(
        (w) => [...document.querySelectorAll("#words li .word")].some((e) => e.textContent === w),
        word,
      );
      assertEquals(seen.errors, []);
    } finally {
      await a.stop();
      await b.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
  {
    missing: EVENTS_REDIS ? undefined : "neither REDIS_URL nor EVENTS_TEST_REDIS_URL is set",
    start: "deno task matrix up redis",
  },
);
