/**
 * Traces through Deno's OpenTelemetry on the real server process with only
 * the embedded SQLite store, exported as OTLP/HTTP JSON to a receiver in this
 * test: each request's server span has a store span child (store, operation,
 * outcome) in the same trace; a request with a sampled W3C `traceparent`
 * joins the caller's trace (trace id, parent span), one with an
 * unsampled `traceparent` exports no span, one with an invalid `traceparent`
 * gets a trace of its own; Deno's request span is never exported, and no
 * word, definition, search term or id is in anything exported (spans, logs,
 * metrics), a GET query string included. Also: tracing on without the
 * sampler and propagators that keep Deno's own request span out refuses to
 * start, and the parent a request's headers give, without a server.
 */
import { assertEquals, assertOk, assertThrows } from "./support/assert.ts";
import { startServer, uniqueTag } from "./support/gateway.ts";
import { ConfigError, parseTracing } from "../server/config.ts";
import { requestParent, TRACER_NAME } from "../server/tracing.ts";
import { trace, TraceFlags } from "@opentelemetry/api";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** The settings tracing needs, on top of the receiver's endpoint. */
const TRACING = {
  OTEL_DENO: "true",
  OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
  OTEL_SERVICE_NAME: "grand-tour-test",
  OTEL_TRACES_SAMPLER: "parentbased_always_off",
  OTEL_PROPAGATORS: "none",
  // export within 0.2 s rather than the default few seconds, and stop without draining
  OTEL_BSP_SCHEDULE_DELAY: "200",
  OTEL_BLRP_SCHEDULE_DELAY: "200",
  SHUTDOWN_DRAIN_MS: "0",
};

type AnyValue = { stringValue?: string; intValue?: string | number; doubleValue?: number };
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: { key: string; value: AnyValue }[];
}
const SERVER = 2; // OTLP SpanKind SERVER
/** A sampled caller's trace and span (the W3C Trace Context example). */
const CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN = "b7ad6b7169203331";
const CALLER_STATE = "congo=t61rcWkgMzE";
/** A caller's trace that is not sampled. */
const UNSAMPLED_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";

/** An OTLP/HTTP receiver on a free port: keeps every POST's path and raw body. */
function receiver() {
  const posts: { path: string; body: Uint8Array }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    posts.push({ path: new URL(req.url).pathname, body: new Uint8Array(await req.arrayBuffer()) });
    return Response.json({});
  });
  const spans = (): { scope: string; span: OtlpSpan }[] =>
    posts.filter((p) => p.path === "/v1/traces").flatMap((p) =>
      // deno-lint-ignore no-explicit-any
      JSON.parse(new TextDecoder().decode(p.body)).resourceSpans.flatMap((r: any) =>
        // deno-lint-ignore no-explicit-any
        r.scopeSpans.flatMap((s: any) =>
          s.spans.map((span: OtlpSpan) => ({ scope: s.scope.name, span }))
        )
      )
    );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    posts,
    spans,
    stop: () => server.shutdown(),
  };
}

function attr(span: OtlpSpan, key: string): string | undefined {
  const value = span.attributes.find((a) => a.key === key)?.value;
  return value?.stringValue ?? (value?.intValue ?? value?.doubleValue)?.toString();
}

async function until(ok: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test(
  "an addWord (POST) and a words search (GET) each export a server span with a SQLite store span child, in the caller's trace when it is sampled, none when it is not, and nothing of the words, search or ids",
  opts,
  async () => {
    const otlp = receiver();
    const server = await startServer({ ...TRACING, OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url });
    try {
      const tag = uniqueTag();
      const word = `${tag}-quagga`;
      const definition = `${tag}-extinct zebra`;
      const search = `${tag}-EXTINCT`;
      const added = await (await fetch(`${server.url}/graphql`, {
        method: "POST",
        // an invalid traceparent (all-zero trace id): a trace of the gateway's own
        headers: {
          "content-type": "application/json",
          traceparent: `00-${"0".repeat(32)}-${CALLER_SPAN}-01`,
        },
        body: JSON.stringify({
          query: `mutation($w: String!, $d: String!) {
            addWord(store: SQLITE, word: $w, definition: $d) { id }
          }`,
          variables: { w: word, d: definition },
        }),
      })).json();
      const id = added.data?.addWord?.id;
      assertOk(id, JSON.stringify(added));
      const query = `{ words(store: SQLITE, search: ${JSON.stringify(search)}) { id word } }`;
      const searchIn = async (traceparent: string) =>
        await (await fetch(`${server.url}/graphql?query=${encodeURIComponent(query)}`, {
          headers: { "x-graphql-yoga-csrf": "1", traceparent, tracestate: CALLER_STATE },
        })).json();
      // a caller that does not sample: nothing of this request is exported
      const unsampled = await searchIn(`00-${UNSAMPLED_TRACE}-${CALLER_SPAN}-00`);
      assertEquals(unsampled.data?.words, [{ id, word }]);
      // a sampled caller: the gateway's spans join its trace, and Deno's span stays off
      // (with OTEL_PROPAGATORS=none Deno reads no traceparent)
      const found = await searchIn(`00-${CALLER_TRACE}-${CALLER_SPAN}-01`);
      assertEquals(found.data?.words, [{ id, word }]);

      const storeSpans = () =>
        otlp.spans().filter(({ span }) => attr(span, "store") === "SQLITE" && span.kind !== SERVER);
      await until(
        () =>
          ["add", "list"].every((op) => storeSpans().some((s) => attr(s.span, "operation") === op)),
        "the add and list store spans",
      );
      // Stopping flushes what is left (the logs, the metrics) before the checks on everything.
      await server.stop();

      const spans = otlp.spans();
      for (const operation of ["add", "list"]) {
        const store = storeSpans().find((s) => attr(s.span, "operation") === operation)!;
        assertEquals(store.scope, TRACER_NAME);
        assertEquals(attr(store.span, "outcome"), "ok");
        const parent = spans.find((s) => s.span.spanId === store.span.parentSpanId);
        assertOk(parent, `the ${operation} span's parent is exported`);
        assertEquals(parent.span.kind, SERVER);
        assertEquals(parent.span.traceId, store.span.traceId);
        if (operation === "list") {
          // the sampled caller's trace, its span the server span's parent
          assertEquals(parent.span.traceId, CALLER_TRACE);
          assertEquals(parent.span.parentSpanId, CALLER_SPAN);
        } else {
          // the invalid traceparent is ignored: a trace and parent (Deno's span, not exported)
          // of the gateway's own
          assertOk(!/^0*$/.test(parent.span.traceId), "a valid trace id of its own");
          assertOk(parent.span.parentSpanId, "Deno's request span is the parent");
          assertOk(parent.span.parentSpanId !== CALLER_SPAN, "the invalid traceparent is ignored");
          assertOk(!spans.some((s) => s.span.spanId === parent.span.parentSpanId));
        }
        assertEquals(parent.span.name, `${operation === "add" ? "POST" : "GET"} /graphql`);
        assertEquals(attr(parent.span, "http.route"), "/graphql");
        assertEquals(attr(parent.span, "http.response.status_code"), "200");
        assertEquals(
          store.span.attributes.map((a) => a.key).sort(),
          ["operation", "outcome", "store"],
        );
      }
      // Only the POST and the sampled GET: the unsampled caller's request exports no span.
      assertEquals(spans.filter((s) => s.span.kind === SERVER).length, 2);
      assertEquals(storeSpans().length, 2);
      assertEquals(spans.filter((s) => s.span.traceId === UNSAMPLED_TRACE), []);
      // Deno's own request span (url.full, url.query) is never sampled.
      for (const { span } of spans) {
        for (const key of ["url.full", "url.query", "url.path", "client.address"]) {
          assertEquals(attr(span, key), undefined, `${span.name} has ${key}`);
        }
      }
      assertOk(otlp.posts.some((p) => p.path === "/v1/logs"), "console lines exported as logs");
      const everything = otlp.posts.map((p) => new TextDecoder().decode(p.body)).join("\n")
        .toLowerCase();
      for (const secret of [tag, "quagga", "extinct", id]) {
        assertOk(!everything.includes(secret.toLowerCase()), `exported data holds ${secret}`);
      }
    } finally {
      await server.stop();
      await otlp.stop();
    }
  },
);

Deno.test("tracing refuses to start unless Deno's own request span stays unsampled", () => {
  assertEquals(parseTracing({}), { enabled: false });
  assertEquals(parseTracing({ ...TRACING }), { enabled: true });
  assertEquals(parseTracing({ ...TRACING, OTEL_DENO_TRACING: "false" }), { enabled: false });
  assertEquals(parseTracing({ ...TRACING, OTEL_SDK_DISABLED: "true" }), { enabled: false });
  assertThrows(() => parseTracing({ ...TRACING, OTEL_TRACES_SAMPLER: "" }), ConfigError);
  assertThrows(() => parseTracing({ ...TRACING, OTEL_PROPAGATORS: undefined }), ConfigError);
  assertThrows(
    () => parseTracing({ ...TRACING, OTEL_PROPAGATORS: "baggage, tracecontext" }),
    ConfigError,
  );
  // Deno traces with OTEL_DENO_TRACING alone too.
  assertThrows(() => parseTracing({ OTEL_DENO_TRACING: "TRUE" }), ConfigError);
});

Deno.test("a request's valid traceparent is its server span's parent; without one, Deno's span, sampled", () => {
  const deno = trace.wrapSpanContext({
    traceId: "1".repeat(32),
    spanId: "2".repeat(16),
    traceFlags: TraceFlags.NONE,
  });
  const parentOf = (headers: Record<string, string>) =>
    trace.getSpanContext(requestParent(new Headers(headers), deno));
  // header names are case-insensitive; the caller's tracestate is kept
  const { traceState, ...caller } = parentOf({
    TraceParent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01`,
    tracestate: CALLER_STATE,
  })!;
  assertEquals(caller, {
    traceId: CALLER_TRACE,
    spanId: CALLER_SPAN,
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
  });
  assertEquals(traceState?.serialize(), CALLER_STATE);
  assertEquals(
    parentOf({ traceparent: `00-${UNSAMPLED_TRACE}-${CALLER_SPAN}-00` })?.traceFlags,
    TraceFlags.NONE,
  );
  const own = {
    traceId: "1".repeat(32),
    spanId: "2".repeat(16),
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
  };
  for (
    const traceparent of [
      undefined,
      "",
      `00-${"0".repeat(32)}-${CALLER_SPAN}-01`,
      `00-${CALLER_TRACE}-${"0".repeat(16)}-01`,
      `ff-${CALLER_TRACE}-${CALLER_SPAN}-01`,
      `00-${CALLER_TRACE}-${CALLER_SPAN}-01-extra`,
      `00-${CALLER_TRACE.toUpperCase()}-${CALLER_SPAN}-01`,
      `00-${CALLER_TRACE}-${CALLER_SPAN}`,
      "garbage",
    ]
  ) {
    assertEquals(parentOf(traceparent === undefined ? {} : { traceparent }), own, traceparent);
  }
});
