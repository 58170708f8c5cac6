import { assertEquals, assertThrows } from "./support/assert.ts";
import { validPage, validSearch, validText } from "../resolvers/validation.ts";
import { GraphQLError } from "graphql";

const code = (fn: () => unknown) => {
  const e = assertThrows(fn, GraphQLError);
  return e.extensions.code;
};

Deno.test("validText trims and accepts 1..256 code points", () => {
  assertEquals(validText("word", "  hi \n", false), "hi");
  assertEquals(validText("word", "😀".repeat(256), false), "😀".repeat(256));
  assertEquals(validText("word", "é".normalize("NFD").repeat(128), false).length, 256);
});

Deno.test("validText rejects empty, whitespace-only and 257 code points", () => {
  assertEquals(code(() => validText("word", "", false)), "BAD_USER_INPUT");
  assertEquals(code(() => validText("word", " \t\n ", false)), "BAD_USER_INPUT");
  assertEquals(code(() => validText("word", "a".repeat(257), false)), "BAD_USER_INPUT");
  assertEquals(code(() => validText("word", "😀".repeat(257), false)), "BAD_USER_INPUT");
});

Deno.test("validText rejects control characters; definitions may hold tab and newline", () => {
  assertEquals(code(() => validText("word", "a\u0000b", false)), "BAD_USER_INPUT");
  assertEquals(code(() => validText("word", "a\tb", false)), "BAD_USER_INPUT");
  assertEquals(code(() => validText("word", "a\nb", false)), "BAD_USER_INPUT");
  assertEquals(code(() => validText("definition", "a\u0007b", true)), "BAD_USER_INPUT");
  assertEquals(code(() => validText("definition", "a\u0085b", true)), "BAD_USER_INPUT");
  assertEquals(code(() => validText("definition", "a\rb", true)), "BAD_USER_INPUT");
  assertEquals(validText("definition", "line one\n\tline two", true), "line one\n\tline two");
});

Deno.test("validText rejects lone surrogates, which no store can keep", () => {
  assertEquals(code(() => validText("word", "a\uD800b", false)), "BAD_USER_INPUT");
});

Deno.test("validSearch keeps the needle literal and treats empty as match-all", () => {
  assertEquals(validSearch(null), undefined);
  assertEquals(validSearch(""), undefined);
  assertEquals(validSearch(" %_.*\\ "), " %_.*\\ ");
  assertEquals(code(() => validSearch("x".repeat(257))), "BAD_USER_INPUT");
  assertEquals(code(() => validSearch("a\u0000")), "BAD_USER_INPUT");
});

Deno.test("validPage allows limit 1..1000 and offset >= 0", () => {
  assertEquals(validPage(1, 0), { limit: 1, offset: 0 });
  assertEquals(validPage(1000, 5), { limit: 1000, offset: 5 });
  assertEquals(code(() => validPage(0, 0)), "BAD_USER_INPUT");
  assertEquals(code(() => validPage(1001, 0)), "BAD_USER_INPUT");
  assertEquals(code(() => validPage(10, -1)), "BAD_USER_INPUT");
});
