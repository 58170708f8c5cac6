import { assertEquals, assertOk } from "./support/assert.ts";
import { fold } from "../stores/fold.ts";
import { matchesSearch, newRecord, timestampOf } from "../stores/records.ts";

Deno.test("ids are UUIDv7 and sort in creation order, even within one millisecond", () => {
  const records = Array.from({ length: 2000 }, (_, i) => newRecord(`w${i}`, "d"));
  const ids = records.map((r) => r.id);
  assertEquals([...ids].sort(), ids);
  assertOk(
    ids.every((id) =>
      /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id)
    ),
  );
});

Deno.test("createdAt is the millisecond inside the id, as ISO-8601 UTC", () => {
  const before = Date.now();
  const r = newRecord("w", "d");
  const at = Date.parse(r.createdAt);
  assertOk(at >= before && at <= Date.now());
  assertEquals(r.createdAt, timestampOf(r.id));
  assertOk(r.createdAt.endsWith("Z"));
});

Deno.test("matchesSearch is literal and case-insensitive on word or definition", () => {
  const r = { ...newRecord("100% Pure", "a_b.c*d\\e"), id: "x" };
  assertOk(matchesSearch(r, "100%"));
  assertOk(matchesSearch(r, fold("PURE")));
  assertOk(matchesSearch(r, "_b.c*d\\"));
  assertOk(!matchesSearch(r, "1%"));
  assertOk(!matchesSearch(r, "a.b"));
  assertOk(matchesSearch(r, undefined));
});
