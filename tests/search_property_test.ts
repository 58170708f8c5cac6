/**
 * Search, property-tested on every store against an independent
 * implementation of its definition (CPython's `casefold` and NFD, see
 * `support/caseless.ts`): for generated words and needles built from the
 * characters where case-insensitive search goes wrong, each store must answer
 * exactly the matches the oracle names, oldest first, a full page at a time.
 *
 * Isolation: every case's words carry one random 12-digit tag, and every
 * needle contains it, so only that case's words can match whatever else the
 * shared databases hold. Digits are caseless, so the letters around the tag
 * meet the folding rules exactly as they would alone (a `Σ` before the tag is
 * at the end of a word for JavaScript's `toLowerCase`, which turns it into a
 * final `ς`).
 *
 * `PROPERTY_SEED` and `PROPERTY_RUNS` as in `support/property.ts`.
 */
import fc from "fast-check";
import { assertEquals } from "./support/assert.ts";
import { caselessOracle } from "./support/caseless.ts";
import { storeTest } from "./support/env.ts";
import { fcOptions } from "./support/property.ts";
import { addWord, gatewayFor, listWords, type Word } from "./support/words.ts";
import { renderColumns } from "../scripts/table.ts";
import { STORE_NAMES, type StoreName } from "../stores/types.ts";

/**
 * Groups of related spellings, one per line, from each category where stores
 * used to disagree. Members of a group are usually, not always, caseless
 * matches of each other (`ı` is not `i`, `Ĳ` is not `IJ`): the oracle decides.
 */
const GROUPS: string[][] = [
  // final sigma
  ["Σ", "σ", "ς"],
  // dotted and dotless i
  ["I", "i", "İ", "ı", "i\u0307", "I\u0307"],
  // sharp s
  ["ß", "ẞ", "ss", "SS", "sS"],
  // Kelvin, Ohm and Ångström signs
  ["K", "k", "\u212A"],
  ["Ω", "ω", "\u2126"],
  ["Å", "å", "\u212B", "A\u030A"],
  // fullwidth
  ["Ａ", "ａ", "A", "a"],
  ["Ｚ", "ｚ", "z"],
  // ligatures
  ["ﬀ", "ff", "FF", "Ff"],
  ["ﬁ", "fi", "FI"],
  ["ﬃ", "ffi", "FFI"],
  ["ﬆ", "ﬅ", "st", "ST"],
  ["Ĳ", "ĳ", "IJ", "ij"],
  // title-case digraphs
  ["Ǆ", "ǅ", "ǆ", "DŽ", "Dž", "dž"],
  ["Ǳ", "ǲ", "ǳ", "DZ", "dz"],
  ["Ǉ", "ǈ", "ǉ", "LJ", "lj"],
  // supplementary-plane case pairs: Deseret, Osage, Adlam, Warang Citi, Medefaidrin, Vithkuqi
  ["\u{10400}", "\u{10428}"],
  ["\u{104B0}", "\u{104D8}"],
  ["\u{1E900}", "\u{1E922}"],
  ["\u{118A0}", "\u{118C0}"],
  ["\u{16E40}", "\u{16E60}"],
  ["\u{10570}", "\u{10597}"],
  // Cherokee (folds to upper case) and Georgian Mtavruli
  ["Ꭰ", "ꭰ"],
  ["Ᏸ", "ᏸ"],
  ["Ა", "ა"],
  // combining marks, NFC and NFD, and Greek that folds to several code points
  ["é", "e\u0301", "É", "E\u0301", "e"],
  ["ǻ", "a\u030A\u0301", "Ǻ"],
  ["ệ", "e\u0323\u0302", "e\u0302\u0323", "Ệ"],
  ["ΐ", "\u1FD3", "ι\u0308\u0301", "Ϊ\u0301"],
  ["ᾂ", "ᾊ", "α\u0313\u0300ι", "ἂι"],
  ["ᾳ", "ᾼ", "αι", "ΑΙ"],
  // Hangul syllable and its jamo
  ["한", "\u1112\u1161\u11AB"],
  // plain letters and a neutral mark
  ["b", "B"],
  ["x", "X"],
  ["-"],
];

/** A unit of text: a group and which of its members is written. */
interface Unit {
  group: number;
  member: number;
}

/** One word of a case: units before and after the tag, in the word and in the definition. */
interface Entry {
  wordPre: Unit[];
  wordPost: Unit[];
  defPre: Unit[];
  defPost: Unit[];
}

const unit: fc.Arbitrary<Unit> = fc.integer({ min: 0, max: GROUPS.length - 1 }).chain((group) =>
  fc.record({
    group: fc.constant(group),
    member: fc.integer({ min: 0, max: GROUPS[group].length - 1 }),
  })
);
const units = fc.array(unit, { maxLength: 5 });
const entry: fc.Arbitrary<Entry> = fc.record({
  wordPre: units,
  wordPost: units,
  defPre: units,
  defPost: units,
});

/** How the needle is made: from a stored word, or at random. */
type NeedleSpec =
  | {
    kind: "derived";
    entry: number;
    field: "word" | "definition";
    before: number;
    after: number;
    /** A member index per unit, to respell each one within its group. */
    respell: number[];
    transform: "none" | "NFC" | "NFD" | "upper" | "lower";
  }
  | { kind: "random"; pre: Unit[]; post: Unit[] };

const needle = (count: number): fc.Arbitrary<NeedleSpec> =>
  fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant("derived" as const),
        entry: fc.integer({ min: 0, max: count - 1 }),
        field: fc.constantFrom("word" as const, "definition" as const),
        // Often none at all: the tag alone matches every word of the case, over several pages.
        before: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 5 })),
        after: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 5 })),
        respell: fc.array(fc.nat(), { minLength: 10, maxLength: 10 }),
        transform: fc.constantFrom("none", "NFC", "NFD", "upper", "lower"),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant("random" as const),
        pre: fc.array(unit, { maxLength: 3 }),
        post: fc.array(unit, { maxLength: 3 }),
      }),
    },
  );

const cases = fc.array(entry, { minLength: 2, maxLength: 10 }).chain((entries) =>
  fc.record({
    entries: fc.constant(entries),
    needle: needle(entries.length),
    limit: fc.integer({ min: 1, max: 4 }),
  })
);

const spell = (us: Unit[]) => us.map((u) => GROUPS[u.group][u.member]).join("");

/** The needle `spec` describes, around `tag`. */
function needleText(spec: NeedleSpec, entries: Entry[], tag: string): string {
  if (spec.kind === "random") return spell(spec.pre) + tag + spell(spec.post);
  const e = entries[spec.entry];
  const [pre, post] = spec.field === "word" ? [e.wordPre, e.wordPost] : [e.defPre, e.defPost];
  const left = pre.slice(pre.length - Math.min(spec.before, pre.length));
  const right = post.slice(0, Math.min(spec.after, post.length));
  const respell = (us: Unit[], from: number) =>
    us.map((u, i) => ({
      group: u.group,
      member: spec.respell[(from + i) % spec.respell.length] % GROUPS[u.group].length,
    }));
  const text = spell(respell(left, 0)) + tag + spell(respell(right, left.length));
  switch (spec.transform) {
    case "NFC":
      return text.normalize("NFC");
    case "NFD":
      return text.normalize("NFD");
    case "upper":
      return text.toUpperCase();
    case "lower":
      return text.toLowerCase();
    default:
      return text;
  }
}

/** Twelve random digits: caseless, so folding leaves them and their neighbours alone. */
function digitTag(): string {
  return [...crypto.getRandomValues(new Uint8Array(12))].map((b) => String(b % 10)).join("");
}

/** What the property tried per store, for the closing table. */
interface Counts {
  cases: number;
  words: number;
  searches: number;
  matched: number;
  empty: number;
  multiPage: number;
}
const counts = new Map<StoreName, Counts>();

for (const store of STORE_NAMES) {
  storeTest(
    store,
    "search finds exactly what the canonical caseless match names (CPython's casefold and NFD), a page at a time",
    async () => {
      const g = await gatewayFor(store);
      const oracle = caselessOracle();
      const c: Counts = { cases: 0, words: 0, searches: 0, matched: 0, empty: 0, multiPage: 0 };
      counts.set(store, c);
      await fc.assert(
        fc.asyncProperty(cases, async ({ entries, needle: spec, limit }) => {
          const tag = digitTag();
          const added = await Promise.all(entries.map((e) =>
            addWord(
              g,
              store,
              spell(e.wordPre) + tag + spell(e.wordPost),
              spell(e.defPre) + tag + spell(e.defPost),
            )
          ));
          added.sort((a, b) => (a.id < b.id ? -1 : 1));
          const text = needleText(spec, entries, tag);
          const verdicts = await oracle.match(text, added.map((w) => [w.word, w.definition]));
          const expected: Word[] = added.filter((_, i) => verdicts[i]);
          c.cases++;
          c.words += added.length;
          c.searches++;
          assertEquals(await listWords(g, store, text, limit, 0), expected.slice(0, limit));
          if (expected.length > limit) {
            c.searches++;
            c.multiPage++;
            const next = await listWords(g, store, text, limit, limit);
            assertEquals(next, expected.slice(limit, 2 * limit));
          }
          if (expected.length) c.matched++;
          else c.empty++;
        }),
        fcOptions,
      );
    },
  );
}

Deno.test("search property: what was tried per store (count table)", () => {
  const rows = [["store", "cases", "words", "searches", "with matches", "no match", "two pages"]];
  for (const store of STORE_NAMES) {
    const c = counts.get(store);
    rows.push(
      c
        ? [store, ...[c.cases, c.words, c.searches, c.matched, c.empty, c.multiPage].map(String)]
        : [store, "-", "-", "-", "-", "-", "-"],
    );
  }
  console.log(
    `\nsearch against the oracle (Unicode ${caselessOracle().unicodeVersion}):\n${
      renderColumns(rows)
    }`,
  );
});
