/**
 * Editing and deleting, written once and run through the gateway against
 * every store: the contract of `updateWord` and `deleteWord`, optimistic
 * concurrency, no resurrection, and atomic edits under concurrency. Every
 * test keeps to words carrying its own random tag.
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import { storeTest } from "./support/env.ts";
import { uniqueTag } from "./support/gateway.ts";
import {
  addWord as add,
  codeOf,
  gatewayFor as gw,
  listWords as list,
  tryDelete,
  tryUpdate,
  type Word,
} from "./support/words.ts";
import { STORE_NAMES } from "../stores/types.ts";

const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
/** A well-formed UUIDv7 no store holds. */
const UNKNOWN_ID = "01890000-0000-7000-8000-000000000000";

for (const store of STORE_NAMES) {
  storeTest(
    store,
    "updateWord changes the given fields and keeps id, createdAt and place in the list",
    async () => {
      const g = await gw(store);
      const tag = uniqueTag();
      const [a, b, c] = [
        await add(g, store, `${tag} alpha`, "first"),
        await add(g, store, `${tag} beta`, "second, to be edited"),
        await add(g, store, `${tag} gamma`, "third"),
      ];
      assertEquals(b.updatedAt, null);
      const { word: edited, body } = await tryUpdate(g, store, {
        id: b.id,
        definition: "  second, edited  ",
      });
      assertEquals(body.errors, undefined);
      assertEquals(
        { ...edited!, updatedAt: null },
        { ...b, definition: "second, edited", updatedAt: null },
      );
      assertOk(ISO_MS.test(edited!.updatedAt!) && edited!.updatedAt! > b.createdAt);
      assertEquals(await list(g, store, tag), [a, edited!, c]);
      // Search finds the new text and no longer the old.
      assertEquals(await list(g, store, `${tag} BETA`), [edited!]);
      assertEquals((await list(g, store, "SECOND, EDITED")).filter((w) => w.id === b.id), [
        edited!,
      ]);
      assertEquals((await list(g, store, "to be edited")).filter((w) => w.id === b.id), []);
      // The word itself, with a null definition: null counts as not given.
      const { word: renamed } = await tryUpdate(g, store, {
        id: b.id,
        word: `${tag} bêta`,
        definition: null,
      });
      assertEquals([renamed!.word, renamed!.definition], [`${tag} bêta`, "second, edited"]);
      assertOk(renamed!.updatedAt! > edited!.updatedAt!);
      assertEquals(await list(g, store, tag), [a, renamed!, c]);
    },
  );

  storeTest(
    store,
    "bad edits are refused and change nothing: no field, bad text, bad id, unknown id",
    async () => {
      const g = await gw(store);
      const tag = uniqueTag();
      const w = await add(g, store, `${tag} stays`, "unchanged");
      const cases: [Record<string, unknown>, string][] = [
        [{ id: w.id }, "BAD_USER_INPUT"],
        [{ id: w.id, word: null, definition: null }, "BAD_USER_INPUT"],
        [{ id: w.id, word: "   " }, "BAD_USER_INPUT"],
        [{ id: w.id, word: "x".repeat(257) }, "BAD_USER_INPUT"],
        [{ id: w.id, word: "tab\there" }, "BAD_USER_INPUT"],
        [{ id: w.id, definition: "bell\u0007" }, "BAD_USER_INPUT"],
        [{ id: w.id.toUpperCase(), word: "x" }, "BAD_USER_INPUT"],
        [{ id: "not-an-id", word: "x" }, "BAD_USER_INPUT"],
        [{ id: "' OR 1=1 --", word: "x" }, "BAD_USER_INPUT"],
        [{ id: w.id, word: "x", expectedUpdatedAt: "yesterday" }, "BAD_USER_INPUT"],
        [{ id: UNKNOWN_ID, word: "x" }, "NOT_FOUND"],
      ];
      for (const [args, code] of cases) {
        const { body } = await tryUpdate(g, store, args as { id: unknown });
        assertEquals(codeOf(body), code, `${JSON.stringify(args)}: ${JSON.stringify(body)}`);
      }
      assertEquals(codeOf((await tryDelete(g, store, { id: "nope" })).body), "BAD_USER_INPUT");
      assertEquals(codeOf((await tryDelete(g, store, { id: UNKNOWN_ID })).body), "NOT_FOUND");
      assertEquals(await list(g, store, tag), [w]);
    },
  );

  storeTest(
    store,
    "expectedUpdatedAt applies an edit only to the version the client saw, else CONFLICT",
    async () => {
      const g = await gw(store);
      const tag = uniqueTag();
      const w = await add(g, store, `${tag} shared`, "original");
      // A never-edited word's version is its createdAt.
      const first = await tryUpdate(g, store, {
        id: w.id,
        definition: "edited by Ann",
        expectedUpdatedAt: w.createdAt,
      });
      assertEquals(first.body.errors, undefined);
      // Bob still holds the original: his edit and his deletion are refused.
      const bob = await tryUpdate(g, store, {
        id: w.id,
        definition: "edited by Bob",
        expectedUpdatedAt: w.createdAt,
      });
      assertEquals(codeOf(bob.body), "CONFLICT");
      assertEquals(
        (bob.body.errors![0].extensions!.current as Word).definition,
        "edited by Ann",
      );
      const bobDeletes = await tryDelete(g, store, { id: w.id, expectedUpdatedAt: w.createdAt });
      assertEquals(codeOf(bobDeletes.body), "CONFLICT");
      assertEquals(await list(g, store, tag), [first.word!]);
      // With the version he now sees, Bob's edit applies.
      const again = await tryUpdate(g, store, {
        id: w.id,
        definition: "edited by Bob",
        expectedUpdatedAt: first.word!.updatedAt,
      });
      assertEquals(again.word?.definition, "edited by Bob");
      const gone = await tryDelete(g, store, {
        id: w.id,
        expectedUpdatedAt: again.word!.updatedAt,
      });
      assertEquals(gone.word, again.word);
    },
  );

  storeTest(
    store,
    "a deleted word never comes back: edits and a second deletion are NOT_FOUND",
    async () => {
      const g = await gw(store);
      const tag = uniqueTag();
      const keep = await add(g, store, `${tag} keep`, "stays");
      const doomed = await add(g, store, `${tag} doomed`, "goes");
      const { word: deleted, body } = await tryDelete(g, store, { id: doomed.id });
      assertEquals(body.errors, undefined);
      assertEquals(deleted, doomed);
      assertEquals(await list(g, store, tag), [keep]);
      assertEquals(codeOf((await tryDelete(g, store, { id: doomed.id })).body), "NOT_FOUND");
      for (const args of [{ word: `${tag} back` }, { definition: "back" }]) {
        const { body } = await tryUpdate(g, store, { id: doomed.id, ...args });
        assertEquals(codeOf(body), "NOT_FOUND");
      }
      assertEquals(await list(g, store, tag), [keep]);
      assertEquals(await list(g, store, `${tag} back`), []);
    },
  );

  storeTest(
    store,
    "100 concurrent edits of one word end with exactly one acknowledged value",
    async () => {
      const g = await gw(store);
      const tag = uniqueTag();
      const w = await add(g, store, `${tag} contested`, "start");
      const results = await Promise.all(
        Array.from(
          { length: 100 },
          (_, i) => tryUpdate(g, store, { id: w.id, word: `${tag} w${i}`, definition: `d${i}` }),
        ),
      );
      const acked = results.flatMap((r) => r.word ? [r.word] : []);
      for (const r of results) {
        assertOk(r.word || codeOf(r.body), `neither a word nor a coded error: ${r.body}`);
      }
      assertOk(acked.length > 0, "no edit was acknowledged");
      const [final] = await list(g, store, `${tag} w`);
      // Never one call's word with another call's definition.
      assertEquals(final.word.slice(final.word.lastIndexOf(" w") + 2), final.definition.slice(1));
      const last = acked.reduce((a, b) => (a.updatedAt! > b.updatedAt! ? a : b));
      assertEquals(final, last);
      assertEquals(new Set(acked.map((a) => a.updatedAt)).size, acked.length);
    },
  );

  storeTest(
    store,
    "two concurrent deletions of one revision: one is acknowledged, the other answers NOT_FOUND",
    async () => {
      const g = await gw(store);
      for (let round = 0; round < 5; round++) {
        const w = await add(g, store, `${uniqueTag()} deleted twice`, "once");
        const revision = w.updatedAt ?? w.createdAt;
        const outcomes = await Promise.all(
          [0, 1].map(() => tryDelete(g, store, { id: w.id, expectedUpdatedAt: revision })),
        );
        assertEquals(
          outcomes.map((o) => o.word ? "deleted" : codeOf(o.body)).sort(),
          ["NOT_FOUND", "deleted"],
          `round ${round}`,
        );
      }
    },
  );

  storeTest(
    store,
    "concurrent edits and a deletion of one word leave it whole or gone, never partial",
    async () => {
      const g = await gw(store);
      const tag = uniqueTag();
      const w = await add(g, store, `${tag} racing`, "start");
      const edits = Array.from(
        { length: 20 },
        (_, i) => tryUpdate(g, store, { id: w.id, definition: `edit ${i}` }),
      );
      const deletion = tryDelete(g, store, { id: w.id });
      const outcomes = [...await Promise.all(edits), await deletion];
      for (const o of outcomes) {
        assertOk(o.word || codeOf(o.body) === "NOT_FOUND", JSON.stringify(o.body));
      }
      assertOk(
        (await deletion).word,
        `the deletion was not acknowledged: ${JSON.stringify((await deletion).body)}`,
      );
      assertEquals(await list(g, store, tag), []);
      const { body } = await tryUpdate(g, store, { id: w.id, definition: "after" });
      assertEquals(codeOf(body), "NOT_FOUND");
    },
  );
}
