import { assertEquals, assertOk, assertRejects } from "./support/assert.ts";
import { deadline, settlesWithin } from "../stores/deadline.ts";

const after = <T>(ms: number, value: T) => new Promise<T>((r) => setTimeout(() => r(value), ms));

Deno.test("deadline resolves with the work's value when it is in time", async () => {
  assertEquals(await deadline(after(5, "done"), 500, "late"), "done");
});

Deno.test("deadline rejects with its message once the time is up, and runs onTimeout once", async () => {
  let cleaned = 0;
  const slow = after(300, "too late");
  const e = await assertRejects(() => deadline(slow, 20, "gave up", () => cleaned++), Error);
  assertEquals(e.message, "gave up");
  assertEquals(cleaned, 1);
  await slow;
  assertEquals(cleaned, 1);
});

Deno.test("deadline passes the work's own rejection through, without onTimeout", async () => {
  let cleaned = 0;
  const e = await assertRejects(
    () => deadline(Promise.reject(new TypeError("broken")), 500, "late", () => cleaned++),
    TypeError,
  );
  assertEquals([e.message, cleaned], ["broken", 0]);
});

Deno.test("settlesWithin tells whether the work settled in time, and never rejects", async () => {
  assertOk(await settlesWithin(after(5, 1), 500));
  assertOk(await settlesWithin(Promise.reject(new Error("x")), 500));
  assertEquals(await settlesWithin(after(300, 1), 20), false);
});
