/**
 * server/events.ts in-process: store filtering, a slow subscriber's bounded
 * queue, the caps' release, and close.
 */
import { assertEquals, assertOk, assertThrows } from "./support/assert.ts";
import { EventBus, type EventError, type WordEvent } from "../server/events.ts";
import { GraphQLError } from "graphql";

function event(i: number, store: "SQLITE" | "REDIS" = "SQLITE"): WordEvent {
  const word = { id: `id${i}`, word: `w${i}`, definition: "d", createdAt: "", store };
  return { kind: "ADDED", store, word } as WordEvent;
}

const isError = (v: WordEvent | EventError): v is EventError => "error" in v;

Deno.test("a subscriber gets its store's events only, in order", async () => {
  const bus = new EventBus();
  const sub = bus.subscribe("SQLITE");
  const first = sub.next(); // starts the subscription
  bus.publish(event(0));
  bus.publish(event(1, "REDIS"));
  bus.publish(event(2));
  const got = [(await first).value, (await sub.next()).value] as WordEvent[];
  assertEquals(got.map((e) => e.word.id), ["id0", "id2"]);
  await sub.return?.();
  assertEquals(bus.open, 0);
  await bus.close();
});

Deno.test("a subscriber that falls SUBSCRIPTION_QUEUE events behind ends with SUBSCRIBER_TOO_SLOW", async () => {
  const bus = new EventBus(undefined, { maxQueue: 5 });
  const sub = bus.subscribe(undefined);
  const first = sub.next();
  for (let i = 0; i < 50; i++) bus.publish(event(i));
  await new Promise((r) => setTimeout(r, 50));
  const got: (WordEvent | EventError)[] = [(await first).value];
  for (;;) {
    const r = await sub.next();
    if (r.done) break;
    got.push(r.value);
  }
  assertOk(got.length <= 7, `bounded: ${got.length}`);
  const last = got.at(-1)!;
  assertOk(isError(last) && last.error.code === "SUBSCRIBER_TOO_SLOW", JSON.stringify(last));
  assertEquals(bus.open, 0);
  await bus.close();
});

Deno.test("caps: per client and in total; a closed subscription frees its place; close ends all", async () => {
  const bus = new EventBus(undefined, { perClient: 2, total: 3 });
  const a1 = bus.subscribe(undefined, "a");
  bus.subscribe(undefined, "a");
  const e = assertThrows(() => bus.subscribe(undefined, "a"), GraphQLError);
  assertEquals(e.extensions.code, "SUBSCRIPTION_LIMIT");
  const b1 = bus.subscribe(undefined, "b");
  assertEquals(
    assertThrows(() => bus.subscribe(undefined, "c"), GraphQLError).extensions.code,
    "SUBSCRIPTION_LIMIT",
  );
  await a1.return?.();
  bus.subscribe(undefined, "c");
  const pending = b1.next();
  await bus.close();
  const last = (await pending).value as EventError;
  assertEquals(last.error.code, "SHUTTING_DOWN");
  assertEquals((await b1.next()).done, true);
  assertEquals(
    assertThrows(() => bus.subscribe(undefined, "d"), GraphQLError).extensions.code,
    "SHUTTING_DOWN",
  );
});
