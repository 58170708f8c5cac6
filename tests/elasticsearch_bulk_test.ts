/**
 * Unit tests of the coalescing of concurrent Elasticsearch adds
 * (`stores/elasticsearch_bulk.ts`), with a fake bulk request the test answers
 * by hand.
 */
import { BulkAdds, MAX_BULK } from "../stores/elasticsearch_bulk.ts";
import type { NewWord } from "../stores/types.ts";
import { assertEquals, assertRejects } from "./support/assert.ts";

function word(n: number): NewWord {
  const id = `id-${n}`;
  return {
    id,
    word: `w${n}`,
    definition: "d",
    createdAt: "2026-01-01T00:00:00.000Z",
    searchKey: id,
  };
}

/** A bulk request the test answers: each call waits until `answer` is called for it. */
function fakeSend() {
  const calls: { ids: string[]; answer: (out: (true | Error)[] | Error) => void }[] = [];
  const send = (records: readonly NewWord[]) =>
    new Promise<(true | Error)[]>((resolve, reject) => {
      calls.push({
        ids: records.map((r) => r.id),
        answer: (out) => out instanceof Error ? reject(out) : resolve(out),
      });
    });
  return { calls, send };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("an add with nothing in flight is sent at once, alone", async () => {
  const { calls, send } = fakeSend();
  const adds = new BulkAdds(send);
  const added = adds.add(word(1));
  await tick();
  assertEquals(calls.map((c) => c.ids), [["id-1"]]);
  calls[0].answer([true]);
  await added;
});

Deno.test("adds that arrive while a request is in flight go together in the next one", async () => {
  const { calls, send } = fakeSend();
  const adds = new BulkAdds(send);
  const first = adds.add(word(0));
  await tick();
  const rest = [1, 2, 3].map((n) => adds.add(word(n)));
  await tick();
  assertEquals(calls.length, 1, "sent a second request while the first was in flight");
  calls[0].answer([true]);
  await first;
  await tick();
  assertEquals(calls.map((c) => c.ids), [["id-0"], ["id-1", "id-2", "id-3"]]);
  calls[1].answer([true, true, true]);
  await Promise.all(rest);
});

Deno.test("an item that failed rejects its own add only", async () => {
  const { calls, send } = fakeSend();
  const adds = new BulkAdds(send);
  const first = adds.add(word(0));
  await tick();
  const [a, b] = [adds.add(word(1)), adds.add(word(2))];
  calls[0].answer([true]);
  await first;
  await tick();
  calls[1].answer([new Error("version conflict"), true]);
  assertEquals((await assertRejects(() => a, Error)).message, "version conflict");
  await b;
});

Deno.test("a failed request rejects every add it carried, and later adds are still sent", async () => {
  const { calls, send } = fakeSend();
  const adds = new BulkAdds(send);
  const [a, b] = [adds.add(word(1)), adds.add(word(2))];
  await tick();
  calls[0].answer(new Error("timed out"));
  assertEquals((await assertRejects(() => a, Error)).message, "timed out");
  assertEquals((await assertRejects(() => b, Error)).message, "timed out");
  const c = adds.add(word(3));
  await tick();
  assertEquals(calls.map((x) => x.ids), [["id-1", "id-2"], ["id-3"]]);
  calls[1].answer([true]);
  await c;
});

Deno.test(`no request carries more than ${MAX_BULK} adds`, async () => {
  const { calls, send } = fakeSend();
  const adds = new BulkAdds(send);
  const all = Array.from({ length: MAX_BULK + 10 }, (_, n) => adds.add(word(n)));
  await tick();
  assertEquals(calls.map((c) => c.ids.length), [MAX_BULK, 10]);
  for (const c of calls) c.answer(c.ids.map(() => true));
  await Promise.all(all);
});
