/**
 * Traces, through Deno's built-in OpenTelemetry (`OTEL_DENO=true` and the
 * standard `OTEL_*` variables) and the tracer of `@opentelemetry/api`, which
 * Deno registers when tracing is on; without it the API's tracer is a no-op.
 *
 * Each request gets a server span of the gateway's own ({@linkcode requestSpans}),
 * and each store call made while serving it a child span
 * ({@linkcode traceStoreCall}, the store registry's observer) with `store`,
 * `operation` and `outcome` (`ok` or the GraphQL error code, as the metrics
 * count it).
 *
 * Why a span of our own: Deno's automatic `Deno.serve` span records the full
 * URL (`url.full`, `url.query`) before the handler runs, and in Deno 2.9 a
 * handler cannot take an attribute back: `setAttribute` on that span adds a
 * second value beside the first, and both are exported. So the gateway runs
 * with `OTEL_TRACES_SAMPLER=parentbased_always_off` and `OTEL_PROPAGATORS=none`
 * (`parseTracing` refuses to start otherwise): Deno's request span is then a
 * root that is never sampled, whatever `traceparent` a client sends (Deno
 * itself reads no `traceparent`), and only the spans made here are exported.
 *
 * The caller's trace is joined all the same: the gateway's server span takes
 * a valid W3C `traceparent` (and `tracestate`) of the request as its parent,
 * read by `W3CTraceContextPropagator` of `@opentelemetry/core`, so it has the
 * caller's trace id, the caller's span as parent and the caller's sampling
 * decision (a caller's "not sampled" exports none of the request's spans);
 * Deno 2.9 takes a foreign parent's ids and flags, not its `tracestate`.
 * Without a valid `traceparent` its parent is Deno's request span, marked
 * sampled. Attributes are fixed names and codes: never a URL, query string,
 * id, word, search term, client address or connection string.
 *
 * @module
 */
import {
  type Context,
  isSpanContextValid,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  trace,
  TraceFlags,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { StoreCall } from "../stores/managed.ts";
import { storeCallOutcome } from "./metrics.ts";

/** The instrumentation scope name of the gateway's spans. */
export const TRACER_NAME = "grand-tour-gateway";

const tracer = trace.getTracer(TRACER_NAME);

/**
 * Records one settled store call as a span, a child of the request being
 * served (the store registry's `observe` option, next to the metrics). The
 * span starts `call.ms` before now and ends now. Calls made outside a request
 * (background pings while reconnecting) get no span.
 */
export function traceStoreCall(call: StoreCall): void {
  if (!trace.getActiveSpan()) return;
  const end = performance.timeOrigin + performance.now();
  const outcome = storeCallOutcome(call.error);
  const span = tracer.startSpan(`store ${call.operation}`, {
    kind: SpanKind.CLIENT,
    startTime: end - call.ms,
    attributes: { store: call.store, operation: call.operation, outcome },
  });
  if (outcome !== "ok") span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
  span.end(end);
}

const w3c = new W3CTraceContextPropagator();

/** Reads `traceparent` and `tracestate` from a request's headers (names are case-insensitive). */
const headerGetter: TextMapGetter<Headers> = {
  keys: (headers) => [...headers.keys()],
  get: (headers, key) => headers.get(key) ?? undefined,
};

/**
 * The parent of a request's server span: the caller's span when the request
 * has a valid W3C `traceparent` (remote, with the caller's sampled flag and
 * `tracestate`), else Deno's request span `deno`, marked sampled.
 */
export function requestParent(headers: Headers, deno: Span): Context {
  const caller = w3c.extract(ROOT_CONTEXT, headers, headerGetter);
  const callerSpan = trace.getSpanContext(caller);
  if (callerSpan && isSpanContextValid(callerSpan)) return caller;
  const { traceId, spanId } = deno.spanContext();
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId,
    spanId,
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
  });
}

/**
 * Hono middleware, first of all: runs the request inside a server span of the
 * gateway's own, named `<METHOD> <route>` with `http.request.method`,
 * `http.route` (the matched pattern, e.g. `/graphql`, never the path a client
 * sent) and `http.response.status_code`. Its parent is the caller's span from
 * a valid `traceparent`, sampled or not as the caller says, else Deno's
 * request span, marked sampled ({@linkcode requestParent}); without an active
 * span (the app called without `Deno.serve`, or tracing off) the request runs
 * as it is.
 */
export function requestSpans(): MiddlewareHandler {
  return async (c, next) => {
    const deno = trace.getActiveSpan();
    if (!deno) return await next();
    const parent = requestParent(c.req.raw.headers, deno);
    const method = c.req.method;
    await tracer.startActiveSpan(
      method,
      { kind: SpanKind.SERVER, attributes: { "http.request.method": method } },
      parent,
      async (span: Span) => {
        try {
          await next();
        } finally {
          const route = routePath(c); // the route that answered
          span.updateName(`${method} ${route}`);
          span.setAttribute("http.route", route);
          span.setAttribute("http.response.status_code", c.res.status);
          if (c.res.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
          span.end();
        }
      },
    );
  };
}
