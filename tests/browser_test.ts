/**
 * End to end in headless Chromium on the real server: the page adds, lists,
 * edits and deletes words on every configured store (in place, with an
 * in-page confirmation, and with optimistic concurrency: a word changed or
 * deleted behind the page's back is reported, never overwritten), shows a
 * store's error when its database is down, and shows markup typed into a
 * definition as text without running it. Screenshots go to
 * `tests/artifacts/browser-*.png`.
 */
import type { Locator, Page } from "playwright-core";
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import {
  browserTest,
  gatewayData,
  screenshot,
  startReadyServer,
  storeEnv,
  watch,
} from "./support/browser.ts";
import { IN_CI, storeConfig } from "./support/env.ts";
import { uniqueTag } from "./support/gateway.ts";
import { STORE_NAMES, type StoreName } from "../stores/types.ts";

const IMG = "<img src=x onerror=alert(1)>";
const SCRIPT = "<script>alert(1)</script>";

/**
 * These tests are about the page, not latency: a store call may take up to
 * 10 s (not 2 s) before the gateway calls the store unavailable, so that a
 * busy shared matrix does not fail them.
 */
const PATIENT = { REQUEST_TIMEOUT_MS: "10000" };

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
  await page.locator("#add-form").getByLabel("Word", { exact: true }).fill(word);
  await page.locator("#add-form").getByLabel("Definition", { exact: true }).fill(definition);
  await page.getByRole("button", { name: "Add" }).click();
  await explained(
    page,
    `waiting for ${JSON.stringify(word)} to be listed`,
    page.waitForFunction(
      (w) =>
        [...document.querySelectorAll("#words li .word")].some((e) => e.textContent === w) ||
        document.getElementById("form-error")!.textContent !== "",
      word,
    ),
  );
  await settled(page);
  return await page.locator("#form-error").innerText();
}

/**
 * Waits until the page has nothing in flight that could still move the focus
 * or re-render rows: the Add button is enabled again (an add ends after its
 * list refresh) and no list read is in flight or queued.
 */
async function settled(page: Page): Promise<void> {
  await page.locator("#add-form button[type=submit]:not([disabled])").waitFor();
  await page.locator("#words:not([aria-busy])").waitFor({ state: "attached" });
}

/**
 * Shows `store`'s words that match `search`: the search first, so that the
 * store is read once, filtered (not its whole list first).
 */
async function showStore(page: Page, store: StoreName, search: string): Promise<void> {
  await page.getByLabel("Search", { exact: true }).fill(search);
  await page.getByLabel("Store", { exact: true }).selectOption(store);
}

/** Waits for `waiting`; when it times out, says what the page shows instead. */
async function explained<T>(page: Page, what: string, waiting: Promise<T>): Promise<T> {
  try {
    return await waiting;
  } catch (e) {
    const shows = await page.evaluate(() =>
      JSON.stringify({
        listError: document.getElementById("list-error")?.textContent,
        status: document.getElementById("list-status")?.textContent,
        rows: [...document.querySelectorAll("#words > li")].map((li) =>
          (li as HTMLElement).innerText
        ),
      })
    ).catch(() => "(page gone)");
    throw new Error(`${what}: ${(e as Error).message}\nThe page shows: ${shows}`);
  }
}

/** The definitions listed next to `word`, as text. */
function definitionsOf(page: Page, word: string): Promise<string[]> {
  return page.locator("#words li").filter({ has: page.locator(".word", { hasText: word }) })
    .locator(".definition").allTextContents();
}

/**
 * Runs `fn` as one step per store; a store that is not configured is skipped
 * loudly on a laptop and fails in CI.
 */
async function eachStore(
  t: Deno.TestContext,
  fn: (store: StoreName) => Promise<void>,
): Promise<void> {
  for (const store of STORE_NAMES) {
    const configured = storeConfig(store) !== undefined;
    if (!configured && !IN_CI) {
      console.warn(`\n!!! SKIPPING browser step ${store}: not configured.\n`);
    }
    await t.step({
      name: store,
      ignore: !configured && !IN_CI,
      fn: async () => {
        assertOk(configured, `${store} is required in CI but not configured`);
        await fn(store);
      },
    });
  }
}

/** How many elements markup from a definition would have made: none, if it stayed text. */
function injected(page: Page): Promise<number> {
  return page.evaluate(() =>
    document.images.length + document.querySelectorAll("#words script, #words img").length
  );
}

browserTest(
  "the page adds and lists words on every configured store, markup as text",
  async (browser, t) => {
    const server = await startReadyServer({ ...storeEnv(), ...PATIENT });
    try {
      const page = await browser.newPage();
      const seen = watch(page);
      await open(page, server.url);
      await eachStore(t, async (store) => {
        const tag = uniqueTag();
        await showStore(page, store, tag);
        const img = `${tag} img ${store.toLowerCase()}`;
        const script = `${tag} script ${store.toLowerCase()}`;
        assertEquals(await addThroughForm(page, img, IMG), "");
        assertEquals(await addThroughForm(page, script, SCRIPT), "");
        assertEquals(await definitionsOf(page, img), [IMG]);
        assertEquals(await definitionsOf(page, script), [SCRIPT]);
        assertEquals(await page.locator("#words-store").innerText(), store);
        assertEquals(await page.locator("#list-error").innerText(), "");
        assertEquals(await injected(page), 0, "markup from a definition became an element");
        await screenshot(page, `browser-${store.toLowerCase()}`);
      });
      assertEquals(seen.dialogs, [], "a definition ran script");
      assertEquals(seen.errors, []);
    } finally {
      await server.stop();
    }
  },
);

// ---- Editing and deleting in place ----

/** A word as the gateway returns it. */
interface ApiWord {
  id: string;
  word: string;
  definition: string;
  createdAt: string;
  updatedAt: string | null;
}

const FIELDS = "id word definition createdAt updatedAt";

/** The words of `store` matching `search`, through the API (not the page). */
async function apiWords(url: string, store: StoreName, search: string): Promise<ApiWord[]> {
  const { words } = await gatewayData<{ words: ApiWord[] }>(
    url,
    `query($store: Store!, $search: String) { words(store: $store, search: $search) { ${FIELDS} } }`,
    { store, search },
  );
  return words;
}

/** Adds a word through the API, behind the page's back. */
async function apiAdd(
  url: string,
  store: StoreName,
  word: string,
  definition: string,
): Promise<ApiWord> {
  const { addWord } = await gatewayData<{ addWord: ApiWord }>(
    url,
    `mutation($store: Store!, $w: String!, $d: String!) {
      addWord(store: $store, word: $w, definition: $d) { ${FIELDS} } }`,
    { store, w: word, d: definition },
  );
  return addWord;
}

/** Changes a word through the API, behind the page's back, at the version it expects. */
async function apiUpdate(
  url: string,
  store: StoreName,
  before: ApiWord,
  change: { word?: string; definition?: string },
): Promise<ApiWord> {
  const { updateWord } = await gatewayData<{ updateWord: ApiWord }>(
    url,
    `mutation($store: Store!, $id: ID!, $w: String, $d: String, $at: String) {
      updateWord(store: $store, id: $id, word: $w, definition: $d, expectedUpdatedAt: $at) {
        ${FIELDS} } }`,
    {
      store,
      id: before.id,
      w: change.word,
      d: change.definition,
      at: before.updatedAt ?? before.createdAt,
    },
  );
  return updateWord;
}

/** Deletes a word through the API, behind the page's back. */
async function apiDelete(url: string, store: StoreName, id: string): Promise<void> {
  await gatewayData(
    url,
    `mutation($store: Store!, $id: ID!) { deleteWord(store: $store, id: $id) { id } }`,
    { store, id },
  );
}

/** The list item of word `id` (in whatever state: shown, edited, confirming). */
function rowOf(page: Page, id: string): Locator {
  return page.locator(`#words > li[data-id="${id}"]`);
}

/** The id of the listed word whose text is exactly `word`. */
async function idOf(page: Page, word: string): Promise<string> {
  const id = await page.evaluate(
    (w) =>
      [...document.querySelectorAll<HTMLElement>("#words > li")]
        .find((li) => li.querySelector(".word")?.textContent === w)?.dataset.id,
    word,
  );
  assertOk(id, `${word} is not listed`);
  return id;
}

/**
 * Waits until row `id` is shown (not edited or confirming) with exactly this
 * word and definition, and the page has settled.
 */
async function waitShown(page: Page, id: string, word: string, definition: string) {
  await explained(
    page,
    `waiting for ${JSON.stringify(word)} to be listed`,
    page.waitForFunction(
      ([id, word, definition]) => {
        const li = document.querySelector(`#words > li[data-id="${id}"]`);
        return li !== null && li.querySelector("form") === null &&
          li.querySelector(".confirm") === null &&
          li.querySelector(".word")?.textContent === word &&
          li.querySelector(".definition")?.textContent === definition;
      },
      [id, word, definition],
    ),
  );
  await settled(page);
}

/** Waits until row `id` says something (its message), and returns what it says. */
async function rowMessage(page: Page, id: string, includes: string): Promise<string> {
  await explained(
    page,
    `waiting for the row to say ${JSON.stringify(includes)}`,
    page.waitForFunction(
      ([id, text]) =>
        document.querySelector(`#words > li[data-id="${id}"] .row-message`)?.textContent
          ?.includes(text),
      [id, includes],
    ),
  );
  return await rowOf(page, id).locator(".row-message").innerText();
}

/** The id of the element that has the focus ("" for none). */
function focusedId(page: Page): Promise<string> {
  return page.evaluate(() => document.activeElement?.id ?? "");
}

/** Whether the focus is on row `id`'s button named `name` (its visible text). */
function focusedButton(page: Page, id: string, name: string): Promise<boolean> {
  return page.evaluate(
    ([id, name]) => {
      const active = document.activeElement;
      return active instanceof HTMLButtonElement && active.textContent === name &&
        active.closest("li")?.getAttribute("data-id") === id;
    },
    [id, name],
  );
}

const EDIT = { name: /^Edit\b/ };
const DELETE = { name: /^Delete\b/ };
const exact = (name: string) => ({ name, exact: true });

browserTest(
  "the page edits, deletes and cancels in place on every configured store, markup as text",
  async (browser, t) => {
    const server = await startReadyServer({ ...storeEnv(), ...PATIENT });
    try {
      const page = await browser.newPage();
      const seen = watch(page);
      await open(page, server.url);
      await eachStore(t, async (store) => {
        const tag = uniqueTag();
        const s = store.toLowerCase();
        await showStore(page, store, tag);
        const word = `${tag} serendipity ${s}`;
        assertEquals(await addThroughForm(page, word, "a happy accident"), "");
        const id = await idOf(page, word);
        const row = rowOf(page, id);
        const [added] = await apiWords(server.url, store, tag);
        assertEquals(added.updatedAt, null);

        // One Edit and one Delete button per word, real buttons, named by what they do.
        assertEquals(await row.getByRole("button", EDIT).count(), 1);
        assertEquals(await row.getByRole("button", DELETE).count(), 1);
        assertEquals(await row.getByRole("button", EDIT).innerText(), "Edit");
        assertEquals(await row.getByRole("button", DELETE).innerText(), "Delete");

        // Cancel leaves it unchanged.
        await row.getByRole("button", EDIT).click();
        assertEquals(
          await focusedId(page),
          `edit-word-${id}`,
          "the focus is not in the word field",
        );
        await row.getByLabel("Word", { exact: true }).fill(`${tag} never saved`);
        await row.getByLabel("Definition", { exact: true }).fill("never saved either");
        await row.getByRole("button", exact("Cancel")).click();
        await waitShown(page, id, word, "a happy accident");
        assertOk(await focusedButton(page, id, "Edit"), "the focus did not return to Edit");

        // Escape cancels too, from the keyboard alone.
        await page.keyboard.press("Enter"); // on the focused Edit button
        assertEquals(await focusedId(page), `edit-word-${id}`);
        await page.keyboard.press("Tab");
        assertEquals(await focusedId(page), `edit-definition-${id}`);
        await page.keyboard.type(" (typed, then dropped)");
        await page.keyboard.press("Escape");
        await waitShown(page, id, word, "a happy accident");
        assertOk(await focusedButton(page, id, "Edit"));
        assertEquals(await apiWords(server.url, store, tag), [added], "Cancel changed the word");

        // Edit in place and Save: markup in the definition stays text.
        const edited = `${tag} serendipity (edited) ${s}`;
        const definition = `a happy accident\n${IMG}\n${SCRIPT}`;
        await row.getByRole("button", EDIT).click();
        await row.getByLabel("Word", { exact: true }).fill(edited);
        await row.getByLabel("Definition", { exact: true }).fill(definition);
        await screenshot(page, `browser-edit-${s}`);
        await row.getByRole("button", exact("Save")).click();
        await waitShown(page, id, edited, definition);
        assertStringIncludes(await page.locator("#list-status").innerText(), "Saved");
        assertEquals(await definitionsOf(page, edited), [definition]);
        assertEquals(await injected(page), 0, "markup from an edited definition became an element");
        assertOk(await focusedButton(page, id, "Edit"), "the focus did not return to Edit");
        const [saved] = await apiWords(server.url, store, tag);
        assertEquals(
          { ...saved, updatedAt: undefined },
          { ...added, word: edited, definition, updatedAt: undefined },
        );
        assertOk(saved.updatedAt !== null && saved.updatedAt > added.createdAt, "no updatedAt");
        await screenshot(page, `browser-edited-${s}`);

        // Only what changed is sent: a second edit of the definition keeps the word.
        await row.getByRole("button", EDIT).click();
        await row.getByLabel("Definition", { exact: true }).fill("a fortunate discovery");
        await row.getByLabel("Definition", { exact: true }).press("Control+Enter");
        await waitShown(page, id, edited, "a fortunate discovery");
        const [again] = await apiWords(server.url, store, tag);
        assertEquals([again.word, again.definition], [edited, "a fortunate discovery"]);
        assertOk(again.updatedAt! > saved.updatedAt!);

        // Delete asks in the page; Cancel keeps the word.
        await row.getByRole("button", DELETE).click();
        assertOk(await row.getByRole("button", exact("Confirm")).isVisible());
        assertOk(await focusedButton(page, id, "Cancel"), "the focus is not on Cancel");
        await screenshot(page, `browser-confirm-${s}`);
        await row.getByRole("button", exact("Cancel")).click();
        await waitShown(page, id, edited, "a fortunate discovery");
        assertOk(await focusedButton(page, id, "Delete"));
        await page.keyboard.press("Enter"); // Delete, from the keyboard
        assertOk(await focusedButton(page, id, "Cancel"));
        await page.keyboard.press("Escape");
        await waitShown(page, id, edited, "a fortunate discovery");
        assertOk(await focusedButton(page, id, "Delete"), "Escape did not return to Delete");
        assertEquals((await apiWords(server.url, store, tag)).length, 1);

        // Confirm deletes it: gone from the list and from the store.
        await row.getByRole("button", DELETE).click();
        await row.getByRole("button", exact("Confirm")).click();
        await row.waitFor({ state: "detached" });
        await settled(page);
        assertStringIncludes(await page.locator("#list-status").innerText(), "Deleted");
        assertEquals(await apiWords(server.url, store, tag), []);
        assertEquals(await page.locator("#list-error").innerText(), "");
      });
      assertEquals(seen.dialogs, [], "the page opened a dialog or a definition ran script");
      assertEquals(seen.errors, []);
      assertEquals(seen.cspViolations, [], "the page broke its Content-Security-Policy");
    } finally {
      await server.stop();
    }
  },
);

browserTest(
  "the page reports a word changed or deleted behind its back and overwrites nothing",
  async (browser, t) => {
    // 13 writes per store; the default limit (600 a minute) would count all stores together.
    const server = await startReadyServer({
      ...storeEnv(),
      ...PATIENT,
      RATE_LIMIT_PER_MINUTE: "0",
    });
    try {
      const page = await browser.newPage();
      const seen = watch(page);
      await open(page, server.url);
      await eachStore(t, async (store) => {
        const tag = uniqueTag();
        const s = store.toLowerCase();
        const first = await apiAdd(server.url, store, `${tag} conflict ${s}`, "first");
        const second = await apiAdd(server.url, store, `${tag} deleted ${s}`, "second");
        const third = await apiAdd(server.url, store, `${tag} removed ${s}`, "third");
        await showStore(page, store, tag);
        await waitShown(page, third.id, third.word, "third");
        const row = rowOf(page, first.id);

        // Edit: the page changes the definition, someone else word and definition meanwhile.
        await row.getByRole("button", EDIT).click();
        await row.getByLabel("Definition", { exact: true }).fill("the page's <b>definition</b>");
        const theirs = await apiUpdate(server.url, store, first, {
          word: `${tag} conflict renamed ${s}`,
          definition: "theirs\n<img src=x onerror=alert(2)>",
        });
        await row.getByRole("button", exact("Save")).click();
        const message = await rowMessage(page, first.id, "Someone else changed this word");
        assertStringIncludes(message, theirs.word);
        assertStringIncludes(message, theirs.definition);
        assertEquals(await injected(page), 0, "markup from the conflict became an element");
        assertEquals(
          (await apiWords(server.url, store, tag)).find((w) => w.id === first.id),
          theirs,
          "the conflicting Save overwrote the other change",
        );
        // The field the page did not touch now holds their word; the page's edit stays.
        assertEquals(await row.getByLabel("Word", { exact: true }).inputValue(), theirs.word);
        assertEquals(
          await row.getByLabel("Definition", { exact: true }).inputValue(),
          "the page's <b>definition</b>",
        );
        await screenshot(page, `browser-conflict-${s}`);

        // Save again applies on top of their version.
        await row.getByRole("button", exact("Save")).click();
        await waitShown(page, first.id, theirs.word, "the page's <b>definition</b>");
        const merged = (await apiWords(server.url, store, tag)).find((w) => w.id === first.id)!;
        assertEquals(
          [merged.word, merged.definition],
          [theirs.word, "the page's <b>definition</b>"],
        );
        assertOk(merged.updatedAt! > theirs.updatedAt!);

        // Delete: someone else changes the word between the list and Confirm.
        await row.getByRole("button", DELETE).click();
        const changed = await apiUpdate(server.url, store, merged, { definition: "changed again" });
        await row.getByRole("button", exact("Confirm")).click();
        const deleteMessage = await rowMessage(page, first.id, "Someone else changed this word");
        assertStringIncludes(deleteMessage, "not deleted");
        assertStringIncludes(deleteMessage, "changed again");
        assertEquals(await row.locator(".definition").innerText(), "changed again");
        assertEquals(
          (await apiWords(server.url, store, tag)).find((w) => w.id === first.id),
          changed,
          "the conflicting Confirm deleted the word",
        );
        await screenshot(page, `browser-conflict-delete-${s}`);
        await row.getByRole("button", exact("Confirm")).click();
        await row.waitFor({ state: "detached" });
        await settled(page);
        assertOk(!(await apiWords(server.url, store, tag)).some((w) => w.id === first.id));

        // Edit a word someone else deletes meanwhile: NOT_FOUND, in plain words.
        const secondRow = rowOf(page, second.id);
        await secondRow.getByRole("button", EDIT).click();
        await secondRow.getByLabel("Definition", { exact: true }).fill("too late");
        await apiDelete(server.url, store, second.id);
        await secondRow.getByRole("button", exact("Save")).click();
        assertStringIncludes(
          await rowMessage(page, second.id, "deleted this word"),
          "your changes were not saved",
        );
        assertOk(await secondRow.getByRole("button", exact("Save")).isDisabled());
        await screenshot(page, `browser-not-found-${s}`);
        await secondRow.getByRole("button", exact("Cancel")).click();
        await secondRow.waitFor({ state: "detached" });
        await settled(page);

        // Delete a word someone else deletes meanwhile.
        const thirdRow = rowOf(page, third.id);
        await thirdRow.getByRole("button", DELETE).click();
        await apiDelete(server.url, store, third.id);
        await thirdRow.getByRole("button", exact("Confirm")).click();
        await rowMessage(page, third.id, "Someone else deleted this word meanwhile");
        await thirdRow.getByRole("button", exact("Dismiss")).click();
        await thirdRow.waitFor({ state: "detached" });
        await settled(page);
        assertEquals(await apiWords(server.url, store, tag), []);
        assertEquals(await page.locator("#list-error").innerText(), "");
      });
      assertEquals(seen.dialogs, [], "the page opened a dialog or a definition ran script");
      assertEquals(seen.errors, []);
      assertEquals(seen.cspViolations, [], "the page broke its Content-Security-Policy");
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
