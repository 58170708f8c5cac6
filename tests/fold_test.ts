/**
 * The gateway's one fold (`stores/fold.ts`) against CPython's implementation
 * of the same definition, for every code point both Unicode versions assign,
 * and the search key and needle rules built on it.
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import { caselessOracle } from "./support/caseless.ts";
import { fold, FOLD_UNICODE_VERSION } from "../stores/fold.ts";
import { KEY_SEPARATOR, matchesSearch, MAX_SEARCH_KEY, searchKey } from "../stores/records.ts";
import { MAX_TEXT } from "../resolvers/validation.ts";

Deno.test("fold agrees with CPython's NFD(casefold(NFD(c))) on every code point it assigns", async () => {
  const oracle = caselessOracle();
  const { assigned, folds } = await oracle.table();
  console.log(
    `oracle: Unicode ${oracle.unicodeVersion}; gateway fold: Unicode ${FOLD_UNICODE_VERSION}`,
  );
  const wrong: string[] = [];
  let compared = 0;
  for (const [first, last] of assigned) {
    for (let cp = first; cp <= last; cp++) {
      const c = String.fromCodePoint(cp);
      const expected = folds[cp] ?? c;
      compared++;
      if (fold(c) !== expected) {
        wrong.push(
          `U+${cp.toString(16).toUpperCase()}: ${JSON.stringify(fold(c))} != ${
            JSON.stringify(expected)
          }`,
        );
      }
    }
  }
  console.log(
    `${compared} code points compared, ${Object.keys(folds).length} of them changed by folding`,
  );
  assertEquals(wrong.slice(0, 20), []);
  assertOk(compared > 140_000);
});

Deno.test("fold of the cases the stores used to disagree on", () => {
  assertEquals(fold("ΟΔΟΣ"), fold("οδοσ"));
  assertOk(fold("ΟΔΟΣ").includes(fold("Σ")));
  assertEquals(fold("ß"), "ss");
  assertEquals(fold("ẞ"), "ss");
  assertEquals(fold("\u212A"), "k"); // Kelvin sign
  assertEquals(fold("\u2126"), "ω"); // Ohm sign
  assertEquals(fold("ǅ"), fold("Ǆ"));
  assertEquals(fold("ǅ"), fold("ǆ"));
  assertEquals(fold("ＡＢ"), "ａｂ");
  assertEquals(fold("ﬃ"), "ffi");
  assertEquals(fold("İ"), "i\u0307");
  assertOk(!fold("İ").includes("\u0130"));
  assertEquals(fold("\u{10400}"), "\u{10428}"); // Deseret
  assertEquals(fold("ꭰ"), "Ꭰ"); // Cherokee folds to upper case
  assertEquals(fold("Ა"), "ა"); // Georgian Mtavruli
  assertEquals(fold("é"), "e\u0301");
  assertEquals(fold("e\u0301"), fold("É"));
});

Deno.test("a search key never grows past its column: four code points per code point at most", () => {
  // U+1F82 is the longest folding; a full word and definition of it fill the key exactly.
  const longest = "\u1F82".repeat(MAX_TEXT);
  assertEquals([...searchKey(longest, longest)].length, MAX_SEARCH_KEY);
});

Deno.test("a needle matches within the word or within the definition, never across both", () => {
  const r = { id: "x", word: "Straße", definition: "ΟΔΟΣ", createdAt: "" };
  assertOk(matchesSearch(r, fold("STRASSE")));
  assertOk(matchesSearch(r, fold("σ")));
  assertOk(!matchesSearch(r, fold("eο")));
  assertEquals(searchKey("A", "B"), `a${KEY_SEPARATOR}b`);
});
