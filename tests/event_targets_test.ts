/**
 * server/event_targets.ts: the BroadcastChannel target reaches another
 * isolate of the same process (a worker), in order, and this one at once.
 */
import { assertEquals } from "./support/assert.ts";
import { broadcastEventTarget } from "../server/event_targets.ts";
import { EventBus, type WordEvent } from "../server/events.ts";

Deno.test({
  name: "BroadcastChannel: an event published in a worker reaches this isolate, in order",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const name = `test-${crypto.randomUUID()}`;
    const transport = broadcastEventTarget(name);
    const bus = new EventBus(transport.target, {}, () => transport.close());
    const sub = bus.subscribe(undefined);
    const got: string[] = [];
    const reading = (async () => {
      for await (const e of sub) {
        got.push((e as WordEvent).word.id);
        if (got.length === 6) break;
      }
    })();
    await new Promise((r) => setTimeout(r, 50)); // subscribed
    const source = `
      import { broadcastEventTarget } from "${new URL(
      "../server/event_targets.ts",
      import.meta.url,
    )}";
      import { EventBus } from "${new URL("../server/events.ts", import.meta.url)}";
      const t = broadcastEventTarget(${JSON.stringify(name)});
      const bus = new EventBus(t.target);
      for (let i = 0; i < 5; i++) {
        bus.publish({ kind: "ADDED", store: "SQLITE",
          word: { id: "w" + i, word: "w", definition: "d", createdAt: "", store: "SQLITE" } });
      }
      setTimeout(() => { t.close(); self.postMessage("done"); }, 100);
    `;
    const worker = new Worker(
      URL.createObjectURL(new Blob([source], { type: "application/typescript" })),
      { type: "module" },
    );
    await new Promise((r) => worker.onmessage = r);
    worker.terminate();
    // and this isolate's own publish is delivered here too, without the channel
    bus.publish({
      kind: "ADDED",
      store: "SQLITE",
      word: { id: "mine", word: "w", definition: "d", createdAt: "", store: "SQLITE" },
    } as WordEvent);
    await reading;
    assertEquals(got, ["w0", "w1", "w2", "w3", "w4", "mine"]);
    await bus.close();
  },
});
