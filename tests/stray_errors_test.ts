/**
 * An error no caller can catch (a driver's unlistened `error` event, a throw
 * from a timer, an unhandled rejection) is reported and survived: run in a
 * child process, since Deno would otherwise end the test runner itself.
 */
import { assertEquals } from "./support/assert.ts";

const MODULE = new URL("../server/stray_errors.ts", import.meta.url).href;

const CHILD = `
import { EventEmitter } from "node:events";
import net from "node:net";
import { keepServingThroughStrayErrors } from ${JSON.stringify(MODULE)};
keepServingThroughStrayErrors((kind, what) => console.log(kind + " | " + what));
setTimeout(() => new EventEmitter().emit("error", new Error("emitted with no listener")), 0);
net.connect(1, "127.0.0.1"); // refused, and no error listener on the socket
setTimeout(() => { throw new Error("thrown from a timer"); }, 10);
Promise.reject(new Error("rejected, never awaited"));
setTimeout(() => console.log("still serving"), 300);
`;

Deno.test("errors no caller can catch are reported one line each and the process keeps serving", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", CHILD],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n").sort();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  assertEquals(lines, [
    "still serving",
    "uncaught error | Error: connect ECONNREFUSED 127.0.0.1:1",
    "uncaught error | Error: emitted with no listener",
    "uncaught error | Error: thrown from a timer",
    "unhandled rejection | Error: rejected, never awaited",
  ]);
});
