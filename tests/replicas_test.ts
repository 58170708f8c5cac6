/**
 * Read/write splitting (stores/replicas.ts) over fake replicas whose applied
 * position, answers and stalls the test controls: reads spread over the
 * replicas, read-your-writes waits for a lagging replica or goes to the
 * primary, a failed, stalled or lagging replica costs no read and comes back
 * once it answers. No database needed.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { assertEquals, assertOk } from "./support/assert.ts";
import { type Positions, PrimaryLostSchema, ReadRouter, type Replica } from "../stores/replicas.ts";
import { settlesWithin } from "../stores/deadline.ts";

/** Positions as plain numbers, as a Redis replication offset is. */
const numbers: Positions<number> = { covers: (a, t) => a >= t, later: Math.max };

/** A replica whose applied position and behaviour the test sets. */
class FakeReplica implements Replica<number, string> {
  position = 0;
  /** "ok", "fail" (rejects), "stall" (never answers). */
  mode: "ok" | "fail" | "stall" = "ok";
  polls = 0;
  closed = false;
  constructor(readonly reader: string) {}
  applied(): Promise<number> {
    this.polls++;
    if (this.mode === "fail") return Promise.reject(new Error("ECONNREFUSED 10.0.0.7:5432"));
    if (this.mode === "stall") return new Promise(() => {});
    return Promise.resolve(this.position);
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

/** A read on `reader` as a store would run it, failing or stalling with its replica. */
function readOn(replicas: FakeReplica[]) {
  return (reader: string): Promise<string> => {
    const r = replicas.find((x) => x.reader === reader);
    if (r?.mode === "fail") return Promise.reject(new Error("connection lost"));
    if (r?.mode === "stall") return new Promise(() => {});
    return Promise.resolve(reader);
  };
}

async function withRouter(
  replicas: FakeReplica[],
  fn: (router: ReadRouter<number, string>, read: () => Promise<string>) => Promise<void>,
  opts = {},
): Promise<void> {
  const router = new ReadRouter("primary", replicas, numbers, {
    probeMs: 20,
    probeTimeoutMs: 50,
    readTimeoutMs: 100,
    ...opts,
  });
  try {
    await fn(router, () => router.read(readOn(replicas)));
  } finally {
    await router.close();
  }
}

Deno.test("without writes, reads go to the replicas in turn and never to the primary", async () => {
  const replicas = [new FakeReplica("r1"), new FakeReplica("r2")];
  await withRouter(replicas, async (router, read) => {
    const seen = [];
    for (let i = 0; i < 6; i++) seen.push(await read());
    assertEquals(seen.filter((s) => s === "r1").length, 3);
    assertEquals(seen.filter((s) => s === "r2").length, 3);
    assertEquals(router.counts, { replica: 6, primary: 0, waits: [] });
  });
});

Deno.test("after a write, a read waits for the replica to apply it, then reads there", async () => {
  const r1 = new FakeReplica("r1");
  await withRouter([r1], async (router, read) => {
    router.wrote(10);
    setTimeout(() => r1.position = 10, 30);
    assertEquals(await read(), "r1");
    assertEquals(router.counts.waits.length, 1);
    assertOk(router.counts.waits[0] >= 20, `waited ${router.counts.waits[0]} ms`);
    // Applied once: the next read does not wait again.
    assertEquals(await read(), "r1");
    assertEquals(router.counts.waits.length, 1);
  }, { waitMs: 500 });
});

Deno.test("a replica that does not apply the write within the bound leaves the read to the primary", async () => {
  const r1 = new FakeReplica("r1");
  await withRouter([r1], async (router, read) => {
    router.wrote(10);
    const t0 = performance.now();
    assertEquals(await read(), "primary");
    const took = performance.now() - t0;
    assertOk(took >= 40 && took < 400, `took ${took} ms`);
    // Once a probe finds it caught up, reads come back to it.
    r1.position = 12;
    await sleep(50);
    assertEquals(await read(), "r1");
    assertEquals(router.counts.primary, 1);
  }, { waitMs: 50 });
});

Deno.test("a replica that did not catch up in time is not waited on again until a probe finds it has", async () => {
  const r1 = new FakeReplica("r1");
  await withRouter([r1], async (router, read) => {
    router.wrote(10);
    assertEquals(await read(), "primary"); // waited 60 ms for 10, gave up
    const waits = () => {
      const w = router.nodes()[1].readWaits!;
      return [w.count, w.gaveUp];
    };
    // Neither the same target nor a newer one waits on it again while it has not applied 10.
    const t0 = performance.now();
    for (let i = 0; i < 2; i++) assertEquals(await read(), "primary");
    router.wrote(12);
    for (let i = 0; i < 3; i++) assertEquals(await read(), "primary");
    const took = performance.now() - t0;
    assertOk(took < 150, `5 reads took ${took} ms`); // not 5 × 60
    assertEquals(waits(), [1, 1]);
    // Once a probe finds it caught up, it serves without a wait...
    r1.position = 12;
    await sleep(50);
    assertEquals(await read(), "r1");
    // ...and a newer write is waited for on it again.
    router.wrote(13);
    setTimeout(() => r1.position = 13, 20);
    assertEquals(await read(), "r1");
    assertEquals(waits(), [2, 1]);
  }, { waitMs: 60 });
});

Deno.test("after a Redis primary restart, reads do not each wait on replicas that can never cover the old replication id", async () => {
  type Offset = { replid: string; offset: number };
  const offsets: Positions<Offset> = {
    covers: (a, t) => a.replid === t.replid && a.offset >= t.offset,
    later: (a, b) => a.replid === b.replid && a.offset > b.offset ? a : b,
  };
  const at: Record<string, Offset> = {
    r1: { replid: "new", offset: 40 },
    r2: { replid: "new", offset: 40 },
  };
  const replicas: Replica<Offset, string>[] = ["r1", "r2"].map((name) => ({
    reader: name,
    applied: () => Promise.resolve(at[name]),
    close: () => Promise.resolve(),
  }));
  const router = new ReadRouter("primary", replicas, offsets, {
    waitMs: 40,
    probeMs: 20,
    probeTimeoutMs: 50,
  });
  const read = () => router.read((reader) => Promise.resolve(reader));
  try {
    router.wrote({ replid: "old", offset: 100 }); // acknowledged before the restart
    const t0 = performance.now();
    for (let i = 0; i < 6; i++) assertEquals(await read(), "primary");
    const took = performance.now() - t0;
    assertOk(took < 240, `6 reads took ${took} ms`); // one wait per replica, not 6 × 2 × 40
    assertEquals(router.nodes().slice(1).map((n) => n.readWaits!.count), [1, 1]);
    // A write in the new history: the replicas are waited for again, and serve.
    router.wrote({ replid: "new", offset: 50 });
    setTimeout(() => at.r1 = at.r2 = { replid: "new", offset: 50 }, 10);
    assertOk(["r1", "r2"].includes(await read()));
  } finally {
    await router.close();
  }
});

Deno.test("a read after a write goes to the replica that has it, not to the lagging one", async () => {
  const [r1, r2] = [new FakeReplica("r1"), new FakeReplica("r2")];
  await withRouter([r1, r2], async (router, read) => {
    r2.position = 7;
    await sleep(50); // probes learn both positions
    router.wrote(7);
    for (let i = 0; i < 4; i++) assertEquals(await read(), "r2");
  }, { waitMs: 10 });
});

Deno.test("writes acknowledged out of order: reads wait for the latest position, not the last reported", async () => {
  const r1 = new FakeReplica("r1");
  await withRouter([r1], async (router, read) => {
    router.wrote(9);
    router.wrote(5);
    router.wrote(7);
    r1.position = 8;
    assertEquals(await read(), "primary");
    r1.position = 9;
    await sleep(50); // it missed 9: a probe must find it applied before it serves
    assertEquals(await read(), "r1");
  }, { waitMs: 20 });
});

Deno.test("a failed position lookup after a write leaves the write acknowledged and every read to the primary until a later write's position", async () => {
  const r1 = new FakeReplica("r1");
  let primaryUp = true;
  const read = (router: ReadRouter<number, string>) =>
    router.read((reader) =>
      reader === "primary" && !primaryUp
        ? Promise.reject(new Error("ECONNREFUSED"))
        : Promise.resolve(reader)
    );
  await withRouter([r1], async (router) => {
    r1.position = 100; // whatever the write was, the replica may not have it: no position says so
    const afterWrite = router.beforeWrite();
    await afterWrite(() => Promise.reject(new Error("ECONNRESET"))); // resolves: the write stands
    for (let i = 0; i < 3; i++) assertEquals(await read(router), "primary");
    assertEquals(router.nodes()[1].readWaits, { count: 0, gaveUp: 0 }); // no replica waited on
    // The primary failing one of those reads: a replica that answers serves it rather than fail.
    primaryUp = false;
    assertEquals(await read(router), "r1");
    primaryUp = true;
    assertEquals(await read(router), "primary");
    // A write begun after the lost one, whose position is read: replicas serve again.
    await router.beforeWrite()(() => Promise.resolve(7));
    assertEquals(await read(router), "r1");
  });
});

Deno.test("a position lookup that hangs is cut off, and a position read for a write begun before the lost one does not end it", async () => {
  const r1 = new FakeReplica("r1");
  await withRouter([r1], async (router, read) => {
    r1.position = 100;
    // MariaDB's @@last_gtid is the connection's own: a write begun earlier may have committed before.
    const early = router.beforeWrite();
    const lost = router.beforeWrite();
    let cutOff = false;
    const t0 = performance.now();
    await lost(() => new Promise(() => {}), () => cutOff = true);
    assertOk(cutOff && performance.now() - t0 < 300, "the position query was not cut off");
    await early(() => Promise.resolve(5));
    assertEquals(await read(), "primary");
    await router.beforeWrite()(() => Promise.resolve(6));
    assertEquals(await read(), "r1");
  }, { pingTimeoutMs: 30 });
});

Deno.test("a replica whose read fails costs no read: the primary serves it, the replica is left out until it answers", async () => {
  const r1 = new FakeReplica("r1");
  await withRouter([r1], async (router, read) => {
    r1.mode = "fail";
    assertEquals(await read(), "primary");
    assertEquals(router.nodes().slice(1)[0].healthy, false);
    assertEquals(await read(), "primary");
    r1.mode = "ok";
    await sleep(60);
    assertEquals(router.nodes().slice(1)[0].healthy, true);
    assertEquals(await read(), "r1");
  });
});

Deno.test("a stalled replica is served around: a read on it times out to the primary, probes leave it out", async () => {
  const [r1, r2] = [new FakeReplica("r1"), new FakeReplica("r2")];
  await withRouter([r1, r2], async (router, read) => {
    r1.mode = "stall";
    const t0 = performance.now();
    const first = await Promise.all([read(), read()]);
    assertOk(performance.now() - t0 < 400, "a stalled read was not cut off");
    assertOk(first.every((s) => s === "primary" || s === "r2"), first.join());
    await sleep(100);
    const status = router.nodes().slice(1);
    assertEquals(status.map((s) => s.healthy), [false, true]);
    assertEquals(status[0].message, "not answering");
    for (let i = 0; i < 4; i++) assertEquals(await read(), "r2");
    r1.mode = "ok";
    await sleep(60);
    const back = new Set<string>();
    for (let i = 0; i < 4; i++) back.add(await read());
    assertEquals([...back].sort(), ["r1", "r2"]);
  });
});

Deno.test("lag is how long ago the oldest write the replica has not applied was acknowledged", async () => {
  const r1 = new FakeReplica("r1");
  await withRouter([r1], async (router) => {
    await sleep(40);
    assertEquals(router.nodes().slice(1)[0].lagMs, 0);
    router.wrote(3);
    await sleep(80);
    const lag = router.nodes().slice(1)[0].lagMs ?? 0;
    assertOk(lag >= 70 && lag < 1000, `lag ${lag}`);
    r1.position = 3;
    await sleep(60);
    assertEquals(router.nodes().slice(1)[0].lagMs, 0);
  });
});

Deno.test("status messages never carry the driver's words (hosts, addresses)", async () => {
  const r1 = new FakeReplica("r1");
  await withRouter([r1], async (router, read) => {
    r1.mode = "fail";
    await read();
    await sleep(60);
    assertOk(!JSON.stringify(router.nodes().slice(1)).includes("10.0.0.7"));
  });
});

Deno.test("a primary that does not answer fails the ping only when no replica serves", async () => {
  const r1 = new FakeReplica("r1");
  await withRouter([r1], async (router, read) => {
    const down = () => Promise.reject(new Error("ECONNREFUSED"));
    await router.ping(down); // the replica serves: the store still serves reads
    assertEquals(router.nodes().map((n) => [n.role, n.healthy]), [
      ["primary", false],
      ["replica", true],
    ]);
    assertEquals(await read(), "r1");
    r1.mode = "fail";
    await sleep(60);
    let failed = false;
    await router.ping(down).catch(() => failed = true);
    assertOk(failed, "with every node down the ping fails");
    await router.ping(() => Promise.resolve());
    assertEquals(router.nodes()[0], { role: "primary", healthy: true, reads: 0 });
  });
});

Deno.test("a primary that answers without its table fails the ping even while a replica serves", async () => {
  await withRouter([new FakeReplica("r1")], async (router) => {
    const lost = () => Promise.reject(new PrimaryLostSchema("the words table is gone"));
    let failed: unknown;
    await router.ping(lost).catch((e) => failed = e);
    assertOk(failed instanceof PrimaryLostSchema, "the store must be opened again to create it");
    assertEquals(router.nodes()[0].healthy, true, "the primary answers: it is not down");
  });
});

Deno.test("while the primary does not answer, a read no replica has confirmed is served by one that answers", async () => {
  const r1 = new FakeReplica("r1");
  let primaryUp = true;
  let primaryTries = 0;
  const read = (router: ReadRouter<number, string>) =>
    router.read((reader) => {
      if (reader === "primary") primaryTries++;
      return reader === "primary" && !primaryUp
        ? Promise.reject(new Error("ECONNREFUSED"))
        : Promise.resolve(reader);
    });
  const ping = () => primaryUp ? Promise.resolve() : Promise.reject(new Error("ECONNREFUSED"));
  await withRouter([r1], async (router) => {
    await router.ping(ping); // the store's ping, as /readyz or a failed call sends it
    router.wrote(10); // the replica never gets it: the primary died first
    primaryUp = false;
    assertEquals(await read(router), "r1"); // the primary's read failed: served by the replica
    await sleep(5); // the ping that read sent confirms it
    assertEquals(router.nodes()[0].healthy, false);
    // Known down: the next read does not try the primary first.
    assertEquals(await read(router), "r1");
    assertEquals([primaryTries, router.counts.primary], [1, 0]);
    // Back: a write it acknowledges ends the fallback, and read-your-writes holds again.
    primaryUp = true;
    router.wrote(11);
    assertEquals(await read(router), "primary");
    // With every replica out as well, the read fails as the primary's did.
    primaryUp = false;
    r1.mode = "fail";
    await sleep(60);
    let failed = "";
    await read(router).catch((e) => failed = e.message);
    assertEquals(failed, "ECONNREFUSED");
  }, { waitMs: 20 });
});

Deno.test("one failed read on the primary is served by a replica, but the primary counts as down only once a ping confirms it", async () => {
  const r1 = new FakeReplica("r1");
  let failReads = 0;
  let primaryTries = 0;
  let pingUp = true;
  let pings = 0;
  const ping = () => {
    pings++;
    return pingUp ? Promise.resolve() : Promise.reject(new Error("ECONNREFUSED"));
  };
  const read = (router: ReadRouter<number, string>) =>
    router.read((reader) => {
      if (reader !== "primary") return Promise.resolve(reader);
      primaryTries++;
      return failReads-- > 0 ? Promise.reject(new Error("ECONNRESET")) : Promise.resolve(reader);
    });
  await withRouter([r1], async (router) => {
    await router.ping(ping);
    router.wrote(10); // the replica never applies it
    // A blip: this one read is served by the replica rather than fail...
    failReads = 1;
    assertEquals(await read(router), "r1");
    await sleep(5);
    // ...but the primary answers its ping: the next read has this gateway's write.
    assertEquals(await read(router), "primary");
    assertEquals(router.nodes()[0].healthy, true);
    assertEquals(pings, 2, "a failed read sends a ping at once");
    // Down for real: the ping confirms it, and reads no longer try the primary first.
    failReads = Infinity;
    pingUp = false;
    assertEquals(await read(router), "r1");
    await sleep(5);
    assertEquals(router.nodes()[0].healthy, false);
    const tries = primaryTries;
    assertEquals(await read(router), "r1");
    assertEquals(primaryTries, tries);
  }, { waitMs: 10, probeMs: 1_000 });
});

Deno.test("a primary found down is probed with the replicas and is up again once its ping succeeds", async () => {
  const r1 = new FakeReplica("r1");
  await withRouter([r1], async (router) => {
    let up = false;
    const ping = () => up ? Promise.resolve() : Promise.reject(new Error("ECONNREFUSED"));
    await router.ping(ping);
    assertEquals(router.nodes()[0].healthy, false);
    up = true;
    await sleep(60); // a probe round pings it again
    assertEquals(router.nodes()[0].healthy, true);
  });
});

Deno.test("a primary ping that hangs is cut off after pingTimeoutMs, and the probes ping it again", async () => {
  const r1 = new FakeReplica("r1");
  await withRouter([r1], async (router) => {
    let pings = 0;
    const hang = () => {
      pings++;
      return new Promise<void>(() => {});
    };
    const pinging = router.ping(hang);
    assertOk(await settlesWithin(pinging, 300), "the ping was not cut off");
    await pinging; // a replica serves: the store's ping still succeeds
    assertEquals(router.nodes()[0], {
      role: "primary",
      healthy: false,
      message: "not answering",
      reads: 0,
    });
    await sleep(150); // a probe's hung ping does not stop the next rounds from pinging
    assertOk(pings >= 3, `${pings} pings`);
    r1.mode = "fail";
    await sleep(60);
    let failed = "";
    await router.ping(hang).catch((e) => failed = e.message);
    assertEquals(failed, "the primary did not answer in time");
  }, { pingTimeoutMs: 30 });
});

Deno.test("each node's line counts its reads and, for a replica, the read-your-writes waits", async () => {
  const r1 = new FakeReplica("r1");
  await withRouter([r1], async (router, read) => {
    assertEquals(router.nodes()[1].readWaits, { count: 0, gaveUp: 0 });
    await read(); // no write yet: no wait
    router.wrote(5);
    setTimeout(() => r1.position = 5, 30);
    assertEquals(await read(), "r1"); // waits ~30 ms, then reads there
    router.wrote(6);
    assertEquals(await read(), "primary"); // r1 never applies 6: gives up after 60 ms
    const [primary, replica] = router.nodes();
    assertEquals([primary.reads, replica.reads], [1, 2]);
    const w = replica.readWaits!;
    assertEquals([w.count, w.gaveUp], [2, 1]);
    assertOk(w.p50Ms! >= 20 && w.p50Ms! < 60, `p50 ${w.p50Ms}`);
    assertOk(w.p99Ms! >= 55 && w.p99Ms! < 400, `p99 ${w.p99Ms}`);
    // The router-wide figure keeps only waits that ended on the replica.
    assertEquals(router.counts.waits.length, 1);
  }, { waitMs: 60 });
});

Deno.test("close stops probing and closes every replica", async () => {
  const replicas = [new FakeReplica("r1"), new FakeReplica("r2")];
  const router = new ReadRouter("primary", replicas, numbers, { probeMs: 10 });
  await sleep(30);
  await router.close();
  const polls = replicas.map((r) => r.polls);
  await sleep(50);
  assertEquals(replicas.map((r) => r.polls), polls);
  assertEquals(replicas.map((r) => r.closed), [true, true]);
});

Deno.test("workers share writes: one router's acknowledged write makes another's reads wait for it", async () => {
  const shared = { channel: `test-${crypto.randomUUID()}`, peers: 1 };
  const [r1, r2] = [new FakeReplica("r1"), new FakeReplica("r2")];
  const a = new ReadRouter("primary", [r1], numbers, { probeMs: 20, waitMs: 500, shared });
  const b = new ReadRouter("primary", [r2], numbers, { probeMs: 20, waitMs: 500, shared });
  try {
    // A's write is acknowledged only once B confirmed it knows the position...
    await a.beforeWrite()(() => Promise.resolve(10));
    // ...so a read on B that starts right after waits for its replica to apply it.
    setTimeout(() => r2.position = 10, 30);
    assertEquals(await b.read(readOn([r2])), "r2");
    assertEquals(b.counts.waits.length, 1);
    assertOk(b.counts.waits[0] >= 20, `waited ${b.counts.waits[0]} ms`);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

Deno.test("a worker that does not confirm holds a write back at most waitMs", async () => {
  const shared = { channel: `test-${crypto.randomUUID()}`, peers: 1 };
  const router = new ReadRouter("primary", [new FakeReplica("r1")], numbers, {
    probeMs: 20,
    waitMs: 60,
    shared,
  });
  try {
    const t0 = performance.now();
    await router.beforeWrite()(() => Promise.resolve(10));
    const took = performance.now() - t0;
    assertOk(took >= 50 && took < 400, `took ${took} ms`);
  } finally {
    await router.close();
  }
});
