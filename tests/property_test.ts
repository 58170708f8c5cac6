/**
 * Property-based tests (fast-check) through the gateway against every store:
 * any text within the input rules round-trips exactly, and any text outside
 * them is refused with BAD_USER_INPUT and writes nothing.
 *
 * `PROPERTY_SEED` and `PROPERTY_RUNS` as in `support/property.ts`. Search
 * itself is `search_property_test.ts`.
 */
import fc from "fast-check";
import { assertEquals, assertOk } from "./support/assert.ts";
import { storeTest } from "./support/env.ts";
import { fcOptions } from "./support/property.ts";
import { uniqueTag } from "./support/gateway.ts";
import {
  codeOf,
  gatewayFor,
  literallyMatches,
  search,
  tryAdd,
  trySearch,
  tryUpdate,
  type Word,
} from "./support/words.ts";
import { STORE_NAMES } from "../stores/types.ts";
import { UUID_V7 } from "../resolvers/validation.ts";

const MAX = 256;
const TAGGED_MAX = MAX - 13; // room for "<tag> " in front

const codePoint = (min: number, max: number) =>
  fc.integer({ min, max }).filter((c) => c < 0xd800 || c > 0xdfff).map((c) =>
    String.fromCodePoint(c)
  );

/** Every character `String.prototype.trim` removes that is not a control character. */
const SPACES = [
  ...[" ", "\u00A0", "\u1680", "\u2000", "\u2007", "\u200A", "\u2028", "\u2029"],
  ...["\u202F", "\u205F", "\u3000", "\uFEFF"],
];
/** Sequences that trip up databases: emoji, combining marks, case-folding oddities, specials. */
const TRICKY = [
  ...["😀", "👩🏽‍💻", "🏳️‍🌈", "e\u0301", "\u0301", "\u200D", "\u200B", "\uFFFD", "\uFFFF"],
  ...["\u{10FFFF}", "\u{E0001}", "İ", "ß", "ﬀ", "Σ", "ς", "ǅ", "%", "_", "\\", "'", '"', "*"],
];
const unit = (multiline: boolean) =>
  fc.oneof(
    { weight: 4, arbitrary: codePoint(0x20, 0x7e) },
    { weight: 3, arbitrary: codePoint(0xa0, 0x10ffff) },
    { weight: 1, arbitrary: fc.constantFrom(...SPACES) },
    { weight: 2, arbitrary: fc.constantFrom(...TRICKY) },
    { weight: multiline ? 1 : 0, arbitrary: fc.constantFrom("\t", "\n") },
  );
const codePoints = (s: string) => [...s].length;
const cut = (s: string, max: number) => [...s].slice(0, max).join("");

/** Text that passes the rules: 1..max code points after trim; short ones and ones near the limit. */
const validText = (max: number, multiline: boolean) =>
  fc.oneof(
    fc.string({ unit: unit(multiline), minLength: 1, maxLength: 24 }),
    fc.string({ unit: unit(multiline), minLength: max - 12, maxLength: max + 4 }),
  ).map((s) => cut(s, max)).filter((s) => s.trim().length > 0);

const nonSpace = codePoint(0x21, 0x7e);
const short = (multiline: boolean) => fc.string({ unit: unit(multiline), maxLength: 20 });
const CONTROLS = [...Array(0x20).keys(), ...Array.from({ length: 0x21 }, (_, i) => 0x7f + i)];

/** A text the rules refuse, with why, and whether `search` refuses it too. */
interface BadText {
  kind: string;
  text: string;
  badSearch: boolean;
}

const badText = (multiline: boolean): fc.Arbitrary<BadText> =>
  fc.oneof(
    fc.tuple(
      nonSpace,
      fc.string({ unit: unit(multiline), minLength: 255, maxLength: 300 }),
      nonSpace,
    )
      .map(([a, s, b]) => ({ kind: "too long", text: a + cut(s, 398) + b, badSearch: true })),
    fc.string({ unit: fc.constantFrom(...SPACES, "\t", "\n", "\r", "\v", "\f"), maxLength: 20 })
      .map((text) => ({ kind: "blank", text, badSearch: false })),
    fc.tuple(
      short(multiline),
      nonSpace,
      fc.constantFrom(...CONTROLS.filter((c) => !multiline || (c !== 9 && c !== 10))),
      nonSpace,
      short(multiline),
    ).map(([p, a, c, b, s]) => ({
      kind: "control character",
      text: p + a + String.fromCharCode(c) + b + s,
      badSearch: c !== 9 && c !== 10,
    })),
    fc.tuple(short(multiline), nonSpace, fc.integer({ min: 0xd800, max: 0xdfff }), nonSpace)
      .map(([p, a, c, b]) => ({
        kind: "lone surrogate",
        text: p + a + String.fromCharCode(c) + b,
        badSearch: true,
      })),
  );

/** Any string that is not a canonical lower-case UUIDv7, or a well-formed one no store holds. */
const foreignId = fc.oneof(
  fc.string({ maxLength: 40 }).filter((s) => !UUID_V7.test(s)),
  fc.uuid().map((u) => u.toUpperCase()).filter((s) => !UUID_V7.test(s)),
  fc.uuid({ version: 7 }).map((u) => ({ notFound: u })),
);

/** The hits of `needle` (which holds a unique tag) must be exactly `expected`. */
function assertOnly(hits: Word[], expected: Word) {
  assertEquals(hits, [expected]);
}

for (const store of STORE_NAMES) {
  storeTest(
    store,
    "any text within the rules round-trips exactly and is found by a literal search",
    async () => {
      const g = await gatewayFor(store);
      const cases = fc.constantFrom("word" as const, "definition" as const).chain((tagIn) =>
        fc.record({
          tagIn: fc.constant(tagIn),
          word: validText(tagIn === "word" ? TAGGED_MAX : MAX, false),
          definition: validText(tagIn === "definition" ? TAGGED_MAX : MAX, true),
        })
      );
      await fc.assert(
        fc.asyncProperty(cases, async ({ tagIn, word, definition }) => {
          const tag = uniqueTag();
          const w = tagIn === "word" ? `${tag} ${word}` : word;
          const d = tagIn === "definition" ? `${tag} ${definition}` : definition;
          const { word: added, body } = await tryAdd(g, store, w, d);
          assertEquals(body.errors, undefined);
          assertEquals([added!.word, added!.definition], [w.trim(), d.trim()]);
          assertOk(codePoints(added!.word) <= MAX && codePoints(added!.definition) <= MAX);
          assertOnly(await search(g, store, tag), added!);
          const field = tagIn === "word" ? added!.word : added!.definition;
          assertOnly(await search(g, store, field), added!);
        }),
        fcOptions,
      );
    },
  );

  storeTest(
    store,
    "any text outside the rules is refused with BAD_USER_INPUT and writes nothing",
    async () => {
      const g = await gatewayFor(store);
      const cases = fc.constantFrom("word" as const, "definition" as const).chain((field) =>
        fc.record({
          field: fc.constant(field),
          bad: badText(field === "definition"),
          other: validText(TAGGED_MAX, field === "word"),
        })
      );
      await fc.assert(
        fc.asyncProperty(cases, async ({ field, bad, other }) => {
          const tag = uniqueTag();
          const good = `${tag} ${other}`;
          const [w, d] = field === "word" ? [bad.text, good] : [good, bad.text];
          const { word: added, body } = await tryAdd(g, store, w, d);
          assertEquals(added, undefined);
          assertEquals(codeOf(body), "BAD_USER_INPUT", `${bad.kind}: ${JSON.stringify(body)}`);
          assertEquals(body.errors?.[0]?.extensions?.argument, field);
          const written = (await search(g, store, tag)).filter((h) => literallyMatches(h, tag));
          assertEquals(written, []);
          if (bad.badSearch) {
            assertEquals(codeOf((await trySearch(g, store, bad.text)).body), "BAD_USER_INPUT");
          }
        }),
        fcOptions,
      );
    },
  );

  storeTest(
    store,
    "any text within the rules replaces a word's text exactly; outside them, nothing changes",
    async () => {
      const g = await gatewayFor(store);
      const cases = fc.record({
        word: validText(TAGGED_MAX, false),
        definition: validText(MAX, true),
        bad: badText(false),
        fields: fc.constantFrom("word", "definition", "both"),
      });
      await fc.assert(
        fc.asyncProperty(cases, async ({ word, definition, bad, fields }) => {
          const tag = uniqueTag();
          const { word: added } = await tryAdd(g, store, `${tag} start`, "start");
          const change = {
            ...(fields !== "definition" ? { word: `${tag} ${word}` } : {}),
            ...(fields !== "word" ? { definition } : {}),
          };
          const refused = await tryUpdate(g, store, { id: added!.id, word: bad.text });
          assertEquals(codeOf(refused.body), "BAD_USER_INPUT", bad.kind);
          assertOnly(await search(g, store, tag), added!);
          const { word: edited, body } = await tryUpdate(g, store, { id: added!.id, ...change });
          assertEquals(body.errors, undefined);
          assertEquals(
            [edited!.word, edited!.definition],
            [change.word?.trim() ?? added!.word, change.definition?.trim() ?? added!.definition],
          );
          assertOnly(await search(g, store, tag), edited!);
        }),
        fcOptions,
      );
    },
  );

  storeTest(
    store,
    "an id the gateway could not have issued is BAD_USER_INPUT, a foreign one NOT_FOUND",
    async () => {
      const g = await gatewayFor(store);
      await fc.assert(
        fc.asyncProperty(foreignId, async (id) => {
          const { body } = typeof id === "string"
            ? await tryUpdate(g, store, { id, word: "x" })
            : await tryUpdate(g, store, { id: id.notFound, word: "x" });
          assertEquals(codeOf(body), typeof id === "string" ? "BAD_USER_INPUT" : "NOT_FOUND");
        }),
        fcOptions,
      );
    },
  );
}
