/**
 * The page's live updates in headless Chromium on the real server (SQLite
 * only): it subscribes to the selected store, shows "Live", and lists,
 * edits and removes words that another client adds, edits and deletes,
 * without a reload; after the gateway restarts it shows "Reconnecting…",
 * then "Live" again, and re-reads the list (pub/sub replays nothing).
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import { browserTest, gatewayData, screenshot, watch } from "./support/browser.ts";
import { startServer, uniqueTag } from "./support/gateway.ts";
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
