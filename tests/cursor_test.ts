import { assertEquals, assertThrows } from "./support/assert.ts";
import { decodeCursor, encodeCursor } from "../resolvers/cursor.ts";
import { newRecord } from "../stores/records.ts";
import { GraphQLError } from "graphql";

const { id } = newRecord("w", "d");

Deno.test("a cursor decodes to its id for the same store and search", () => {
  assertEquals(decodeCursor(encodeCursor("REDIS", "abc", id), "REDIS", "abc"), id);
  assertEquals(decodeCursor(encodeCursor("REDIS", undefined, id), "REDIS", undefined), id);
});

Deno.test("a cursor of another store, another search or none at all is BAD_USER_INPUT", () => {
  const cursor = encodeCursor("REDIS", "abc", id);
  for (
    const [c, store, search] of [
      [cursor, "SCYLLA", "abc"],
      [cursor, "REDIS", "abd"],
      [cursor, "REDIS", undefined],
      [encodeCursor("REDIS", undefined, id), "REDIS", "abc"],
      ["", "REDIS", "abc"],
      ["bm90IGpzb24", "REDIS", "abc"], // "not json"
      [btoa(JSON.stringify({ v: 1, s: "REDIS", q: "", id: "x" })), "REDIS", undefined],
      [cursor + "=", "REDIS", "abc"],
    ] as const
  ) {
    const e = assertThrows(() => decodeCursor(c, store, search), GraphQLError);
    assertEquals(e.extensions.code, "BAD_USER_INPUT");
    assertEquals(e.extensions.argument, "after");
  }
});

Deno.test("a cursor says nothing readable about the search it belongs to", () => {
  const cursor = encodeCursor("SQLITE", "secret needle", id);
  assertEquals(atob(cursor.replaceAll("-", "+").replaceAll("_", "/")).includes("secret"), false);
});
