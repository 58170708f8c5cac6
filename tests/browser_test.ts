/**
 * End to end in headless Chromium on the real server: the page adds and
 * lists words on every configured store, shows a store's error when its
 * database is down, and shows markup typed into a definition as text without
 * running it. Screenshots go to `tests/artifacts/browser-*.png`.
 */
import type { Page } from "playwright-core";
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import { browserTest, screenshot, startReadyServer, storeEnv, watch } from "./support/browser.ts";
import { IN_CI, storeConfig } from "./support/env.ts";
import { uniqueTag } from "./support/gateway.ts";
import { STORE_NAMES } from "../stores/types.ts";

const IMG = "<img src=x onerror=alert(1)>";
const SCRIPT = "<script>alert(1)</script>";

/** Opens the page and waits until the store list has loaded. */
async function open(page: Page, url: string): Promise<void> {
  page.setDefaultTimeout(20_000);
  await page.goto(url);
  await page.waitForFunction(() => document.querySelectorAll("#store option").length > 0);
}

/**
 * Adds a word through the form and waits until it is listed or the form
 * shows an error; returns that error ("" when the word was added).
 */
async function addThroughForm(page: Page, word: string, definition: string): Promise<string> {
  await page.getByLabel("Word", { exact: true }).fill(word);
  await page.getByLabel("Definition", { exact: true }).fill(definition);
  await page.getByRole("button", { name: "Add" }).click();
  await page.waitForFunction(
    (w) =>
      [...document.querySelectorAll("#words li .word")].some((e) => e.textContent === w) ||
      document.getElementById("form-error")!.textContent !== "",
    word,
  );
  return await page.locator("#form-error").innerText();
}

/** The definitions listed next to `word`, as text. */
function definitionsOf(page: Page, word: string): Promise<string[]> {
  return page.locator("#words li").filter({ has: page.locator(".word", { hasText: word }) })
    .locator(".definition").allTextContents();
}

browserTest(
  "the page adds and lists words on every configured store, markup as text",
  async (browser, t) => {
    const server = await startReadyServer(storeEnv());
    try {
      const page = await browser.newPage();
      const seen = watch(page);
      await open(page, server.url);
      for (const store of STORE_NAMES) {
        const configured = storeConfig(store) !== undefined;
        if (!configured && !IN_CI) {
          console.warn(
            `\n!!! SKIPPING browser step ${store}: not configured.\n`,
          );
        }
        await t.step({
          name: store,
          ignore: !configured && !IN_CI,
          fn: async () => {
            assertOk(configured, `${store} is required in CI but not configured`);
            const tag = uniqueTag();
            await page.getByLabel("Store", { exact: true }).selectOption(store);
            await page.getByLabel("Search", { exact: true }).fill(tag);
            const img = `${tag} img ${store.toLowerCase()}`;
            const script = `${tag} script ${store.toLowerCase()}`;
            assertEquals(await addThroughForm(page, img, IMG), "");
            assertEquals(await addThroughForm(page, script, SCRIPT), "");
            assertEquals(await definitionsOf(page, img), [IMG]);
            assertEquals(await definitionsOf(page, script), [SCRIPT]);
            assertEquals(await page.locator("#words-store").innerText(), store);
            assertEquals(await page.locator("#list-error").innerText(), "");
            const injected = await page.evaluate(() =>
              document.images.length + document.querySelectorAll("#words script").length
            );
            assertEquals(injected, 0, "markup from a definition became an element");
            await screenshot(page, `browser-${store.toLowerCase()}`);
          },
        });
      }
      assertEquals(seen.dialogs, [], "a definition ran script");
      assertEquals(seen.errors, []);
    } finally {
      await server.stop();
    }
  },
);

browserTest(
  "the page shows a store's error when its database is down; others keep serving",
  async (browser) => {
    // A store on a closed port: the shared matrix servers are never stopped.
    const server = await startReadyServer({
      POSTGRESQL_URL: "postgres://u:secret-pw@127.0.0.1:9/x",
    }, 0);
    try {
      const page = await browser.newPage();
      const seen = watch(page);
      await open(page, server.url);
      const chip = page.locator("#stores li", { hasText: "POSTGRESQL" });
      assertEquals(await chip.innerText(), "POSTGRESQL: unavailable");
      assertEquals(await chip.getAttribute("data-state"), "down");
      assertOk(!(await chip.getAttribute("title") ?? "").includes("secret-pw"));

      await page.getByLabel("Store", { exact: true }).selectOption("POSTGRESQL");
      await page.waitForFunction(() => document.getElementById("list-error")!.textContent !== "");
      assertStringIncludes(
        await page.locator("#list-error").innerText(),
        "POSTGRESQL is unavailable",
      );
      const error = await addThroughForm(page, `${uniqueTag()} down`, "never stored");
      assertStringIncludes(error, "POSTGRESQL is unavailable");
      const text = await page.locator("body").innerText();
      for (const secret of ["secret-pw", "postgres://", "127.0.0.1:9", "u:secret"]) {
        assertOk(!text.includes(secret), `the page shows ${JSON.stringify(secret)}`);
      }
      await screenshot(page, "browser-outage");

      await page.getByLabel("Store", { exact: true }).selectOption("SQLITE");
      const word = `${uniqueTag()} still serving`;
      assertEquals(await addThroughForm(page, word, "SQLite answers while PostgreSQL is down"), "");
      assertEquals(await page.locator("#form-error").innerText(), "");
      assertEquals(seen.dialogs, []);
      assertEquals(seen.errors, []);
    } finally {
      await server.stop();
    }
  },
);
