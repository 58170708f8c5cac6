/**
 * The search rule as someone else implemented it: CPython's `str.casefold()`
 * and `unicodedata` (`caseless_oracle.py`), a second, independent reading of
 * the Unicode Standard's canonical caseless match. Tests ask it what every
 * store must answer. One `python3` process per test file, started on first use.
 *
 * @module
 */

const SCRIPT = new URL("./caseless_oracle.py", import.meta.url).pathname;

/** What the oracle answers to `table`. */
export interface FoldTable {
  /** Code point ranges assigned in the oracle's Unicode version, surrogates excluded. */
  assigned: [number, number][];
  /** The folded form of every assigned code point that folding or NFD changes. */
  folds: Record<string, string>;
}

let oracle: Oracle | undefined;

/** The shared oracle process. */
export function caselessOracle(): Oracle {
  if (!oracle) {
    oracle = new Oracle();
    globalThis.addEventListener("unload", () => oracle?.close());
  }
  return oracle;
}

/** A running `caseless_oracle.py`, answering one request at a time. */
export class Oracle {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #lines: AsyncIterator<string>;
  #queue: Promise<unknown> = Promise.resolve();
  /** The Unicode version of the oracle's tables, known after its first answer. */
  unicodeVersion: string | undefined;

  constructor() {
    try {
      this.#child = new Deno.Command("python3", {
        args: ["-X", "utf8", SCRIPT],
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
    } catch (e) {
      throw new Error(
        `the search oracle needs python3 on PATH (${(e as Error).message}): ` +
          "it is the independent implementation every store's search is checked against",
      );
    }
    this.#writer = this.#child.stdin.getWriter();
    this.#lines = lines(this.#child.stdout)[Symbol.asyncIterator]();
  }

  /** For each `[word, definition]`, whether `needle` matches it. */
  match(needle: string, words: [string, string][]): Promise<boolean[]> {
    return this.#ask({ op: "match", needle, words });
  }

  /** `NFD(casefold(NFD(text)))` of each text. */
  fold(texts: string[]): Promise<string[]> {
    return this.#ask({ op: "fold", texts });
  }

  /** Every assigned code point's folding (see {@linkcode FoldTable}). */
  table(): Promise<FoldTable> {
    return this.#ask({ op: "table" });
  }

  close(): void {
    try {
      this.#writer.close().catch(() => {});
      this.#child.kill();
    } catch {
      // gone already
    }
  }

  #ask<T>(request: unknown): Promise<T> {
    const turn = this.#queue.then(async () => {
      await this.#writer.write(new TextEncoder().encode(JSON.stringify(request) + "\n"));
      const { value, done } = await this.#lines.next();
      if (done) throw new Error("the search oracle (python3) exited");
      const reply = JSON.parse(value) as { unicode: string; result: T };
      this.unicodeVersion = reply.unicode;
      return reply.result;
    });
    this.#queue = turn.catch(() => {});
    return turn;
  }
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of stream) {
    buffer += decoder.decode(chunk, { stream: true });
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
    }
  }
}
