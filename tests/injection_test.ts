/**
 * Injection through the gateway on every store: SQL, CQL, MongoDB operator,
 * Elasticsearch query-string, Redis and AMQP framing payloads in `word`,
 * `definition` and `search` are stored, read back and matched literally;
 * the ones the input rules refuse get BAD_USER_INPUT and write nothing. As
 * an edited definition they are stored literally too, and as the id of an
 * edit or a deletion they are refused without changing anything. Prints a count table per store and writes every outcome to
 * `tests/artifacts/injection.tsv`.
 */
import { storeTest } from "./support/env.ts";
import { type TestGateway, uniqueTag } from "./support/gateway.ts";
import { acceptedSearch, acceptedText, OPERATOR_OBJECTS, PAYLOADS } from "./support/hostile.ts";
import {
  codeOf,
  gatewayFor,
  literallyMatches,
  search,
  tryAdd,
  tryDelete,
  trySearch,
  tryUpdate,
  type Word,
} from "./support/words.ts";
import { STORE_NAMES, type StoreName } from "../stores/types.ts";
import { renderColumns } from "../scripts/table.ts";

/** Where a payload went: a new word, its definition, a search, an edited definition, or an id. */
type Field = "word" | "definition" | "search" | "edit" | "id";
type Outcome = "stored literally" | "matched literally" | "refused BAD_USER_INPUT" | "FAILED";

/** What one hostile input got in one field on one store. */
interface Result {
  store: StoreName;
  family: string;
  field: Field;
  input: string;
  outcome: Outcome;
  detail: string;
}

const results: Result[] = [];
const CONCURRENCY = 8;

function fail(message: string): never {
  throw new Error(message);
}

/** Runs `check` and records what the input got; a thrown check is a FAILED outcome. */
async function attempt(
  base: Omit<Result, "outcome" | "detail">,
  check: () => Promise<Outcome>,
): Promise<Result> {
  let result: Result;
  try {
    result = { ...base, outcome: await check(), detail: "" };
  } catch (e) {
    result = { ...base, outcome: "FAILED", detail: (e as Error).message };
  }
  results.push(result);
  return result;
}

/** `fn` over `items`, at most {@linkcode CONCURRENCY} at a time, results in order. */
async function pool<T, R>(items: readonly T[], fn: (item: T, i: number) => Promise<R>) {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return out;
}

/** Adds one pair; expects the exact trimmed text back, or BAD_USER_INPUT when not `accepted`. */
async function add(
  g: TestGateway,
  store: StoreName,
  word: unknown,
  definition: unknown,
  accepted: boolean,
): Promise<Word | undefined> {
  const { word: added, body } = await tryAdd(g, store, word, definition);
  if (!accepted) {
    if (codeOf(body) !== "BAD_USER_INPUT") fail(`not refused: ${JSON.stringify(body)}`);
    return undefined;
  }
  if (!added) fail(`addWord failed: ${JSON.stringify(body.errors)}`);
  const sent = [String(word).trim(), String(definition).trim()];
  if (added.word !== sent[0] || added.definition !== sent[1]) {
    fail(`addWord answered ${JSON.stringify([added.word, added.definition])}`);
  }
  return added;
}

/**
 * Every payload on one store. All words carry the run's tag; payload `i`
 * gives `w` (the payload as the word, `<tag>:<i>:w` as a decoy definition)
 * and `d` (`<tag>:<i>:<payload>` as the definition). One listing by tag must
 * read back exactly what was accepted; a search for `<tag>:<i>:<payload>`
 * must find `d` and not the decoy; a search for the payload alone must only
 * hit words that hold it literally.
 */
async function attackStore(store: StoreName): Promise<void> {
  const g = await gatewayFor(store);
  const tag = uniqueTag();
  const added = await pool(PAYLOADS, async ({ family, text }, i) => {
    const words: (Word | undefined)[] = [];
    const pairs: [Field, string, string, boolean][] = [
      ["word", text, `${tag}:${i}:w`, acceptedText(text, false)],
      [
        "definition",
        `${tag} d${i}`,
        `${tag}:${i}:${text}`,
        acceptedText(`${tag}:${i}:${text}`, true),
      ],
    ];
    const outcomes: Result[] = [];
    for (const [k, [field, word, definition, accepted]] of pairs.entries()) {
      outcomes.push(
        await attempt({ store, family, field, input: text }, async () => {
          const w = await add(g, store, word, definition, accepted);
          words[k] = w;
          return w ? "stored literally" : "refused BAD_USER_INPUT";
        }),
      );
    }
    return { w: words[0], d: words[1], outcomes };
  });

  const stored = new Map((await search(g, store, tag)).map((w) => [w.id, w]));
  const accepted = new Set(added.flatMap(({ w, d }) => [w?.id, d?.id]));
  for (const [i, { w, d, outcomes }] of added.entries()) {
    [w, d].forEach((x, k) => {
      const back = x && stored.get(x.id);
      if (x && JSON.stringify(back) !== JSON.stringify(x)) {
        Object.assign(outcomes[k], {
          outcome: "FAILED",
          detail: `read back ${JSON.stringify(back)}`,
        });
      }
    });
    for (const x of stored.values()) {
      if (accepted.has(x.id) || !literallyMatches(x, `${tag}:${i}:`)) continue;
      const k = x.definition === `${tag}:${i}:w` ? 0 : 1;
      Object.assign(outcomes[k], { outcome: "FAILED", detail: `wrote ${JSON.stringify(x)}` });
    }
  }

  await pool(
    PAYLOADS,
    ({ family, text }, i) =>
      attempt({ store, family, field: "search", input: text }, async () => {
        if (!acceptedSearch(text)) {
          const { body } = await trySearch(g, store, text);
          if (codeOf(body) !== "BAD_USER_INPUT") {
            fail(`search not refused: ${JSON.stringify(body)}`);
          }
          return "refused BAD_USER_INPUT";
        }
        const { w, d } = added[i];
        const needle = `${tag}:${i}:${text}`.trim();
        const exact = await search(g, store, needle);
        const literal = exact.filter((x) => literallyMatches(x, needle));
        if (JSON.stringify(literal.map((x) => x.id)) !== JSON.stringify(d ? [d.id] : [])) {
          fail(`search ${JSON.stringify(needle)} hit ${JSON.stringify(exact)}`);
        }
        const alone = await search(g, store, text);
        const strays = [
          ...exact.filter((x) => !literallyMatches(x, needle)),
          ...alone.filter((x) => !literallyMatches(x, text)),
        ];
        if (strays.length) {
          fail(`non-literal hits: ${JSON.stringify(strays.slice(0, 3))}`);
        }
        const own = [w, d].filter((x) => x !== undefined && literallyMatches(x, text));
        if (
          alone.length < 1000 && own.length && !alone.some((x) => own.some((o) => o!.id === x.id))
        ) {
          fail("a search for the payload alone missed its own words");
        }
        return "matched literally";
      }),
  );

  for (const object of OPERATOR_OBJECTS) {
    const input = JSON.stringify(object);
    const mark = `${tag}:op`;
    for (const field of ["word", "definition", "search"] as const) {
      await attempt({ store, family: "GraphQL variable object", field, input }, async () => {
        const { body } = field === "search"
          ? await trySearch(g, store, object)
          : field === "word"
          ? await tryAdd(g, store, object, mark)
          : await tryAdd(g, store, mark, object);
        if (codeOf(body) !== "BAD_USER_INPUT") fail(`not refused: ${JSON.stringify(body)}`);
        return "refused BAD_USER_INPUT";
      });
    }
  }
  const written = (await search(g, store, `${tag}:op`)).filter((x) => literallyMatches(x, tag));
  if (written.length) fail(`an operator object wrote ${JSON.stringify(written)}`);
  await attackEdits(g, store, tag);
}

/**
 * Every payload as an id of `updateWord` and `deleteWord` (refused, nothing
 * changes) and as an edited definition (stored and read back literally, or
 * refused with the word unchanged).
 */
async function attackEdits(g: TestGateway, store: StoreName, tag: string): Promise<void> {
  const target = await add(g, store, `${tag}:target`, "must never change", true);
  await pool(PAYLOADS, async ({ family, text }, i) => {
    await attempt({ store, family, field: "id", input: text }, async () => {
      for (
        const { body } of [
          await tryUpdate(g, store, { id: text, word: "x" }),
          await tryDelete(g, store, { id: text }),
        ]
      ) {
        if (codeOf(body) !== "BAD_USER_INPUT") fail(`id not refused: ${JSON.stringify(body)}`);
      }
      return "refused BAD_USER_INPUT";
    });
    await attempt({ store, family, field: "edit", input: text }, async () => {
      const own = await add(g, store, `${tag}:e${i}`, "before the edit", true);
      const definition = `${tag}:e${i}:${text}`;
      const { word: edited, body } = await tryUpdate(g, store, { id: own!.id, definition });
      if (!acceptedText(definition, true)) {
        if (codeOf(body) !== "BAD_USER_INPUT") fail(`edit not refused: ${JSON.stringify(body)}`);
        const [now] = await search(g, store, `${tag}:e${i}`);
        if (now?.definition !== "before the edit") {
          fail(`a refused edit changed ${JSON.stringify(now)}`);
        }
        return "refused BAD_USER_INPUT";
      }
      if (edited?.definition !== definition.trim()) {
        fail(`updateWord answered ${JSON.stringify(body)}`);
      }
      const [back] = (await search(g, store, definition.trim())).filter((x) => x.id === own!.id);
      if (JSON.stringify(back) !== JSON.stringify(edited)) {
        fail(`read back ${JSON.stringify(back)}`);
      }
      return "stored literally";
    });
  });
  const [after] = await search(g, store, `${tag}:target`);
  if (JSON.stringify(after) !== JSON.stringify(target)) {
    fail(`the target changed: ${JSON.stringify(after)}`);
  }
}

for (const store of STORE_NAMES) {
  storeTest(store, "hostile payloads are stored, read back and matched literally", async () => {
    await attackStore(store);
    const failed = results.filter((r) => r.store === store && r.outcome === "FAILED");
    if (failed.length) {
      throw new Error(
        `${failed.length} hostile inputs were not handled literally:\n` +
          failed.map((r) => `${r.field} ${JSON.stringify(r.input)}: ${r.detail}`).join("\n"),
      );
    }
  });
}

Deno.test("hostile inputs tried per store and what each got (count table)", async () => {
  const columns: Outcome[] = [
    "stored literally",
    "matched literally",
    "refused BAD_USER_INPUT",
    "FAILED",
  ];
  const rows = [["store", "tried", ...columns]];
  for (const store of STORE_NAMES) {
    const mine = results.filter((r) => r.store === store);
    rows.push(
      mine.length
        ? [
          store,
          String(mine.length),
          ...columns.map((c) => String(mine.filter((r) => r.outcome === c).length)),
        ]
        : [store, "-", ...columns.map(() => "-")],
    );
  }
  const table = renderColumns(rows);
  console.log(`\nhostile inputs (each field counts once):\n${table}`);
  const dir = new URL("./artifacts/", import.meta.url);
  await Deno.mkdir(dir, { recursive: true });
  const lines = results.map((r) =>
    [r.store, r.family, r.field, JSON.stringify(r.input), r.outcome, r.detail]
      .join("\t")
  );
  await Deno.writeTextFile(
    new URL("injection.tsv", dir),
    ["store\tfamily\tfield\tinput\toutcome\tdetail", ...lines].join("\n") + "\n",
  );
});
