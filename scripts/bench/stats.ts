/**
 * Latency statistics over every response of a cell, kept exact (no
 * histogram buckets): the load generator's own histogram rounds to whole
 * milliseconds, too coarse for sub-millisecond listings.
 *
 * @module
 */

/** A growable list of latencies in milliseconds. */
export class Samples {
  #values = new Float64Array(4096);
  #length = 0;

  /** Adds one latency. */
  push(ms: number): void {
    if (this.#length === this.#values.length) {
      const bigger = new Float64Array(this.#values.length * 2);
      bigger.set(this.#values);
      this.#values = bigger;
    }
    this.#values[this.#length++] = ms;
  }

  /** How many latencies were added. */
  get length(): number {
    return this.#length;
  }

  /** The latencies, sorted ascending (a copy). */
  sorted(): Float64Array {
    return this.#values.slice(0, this.#length).sort();
  }
}

/**
 * The `p`-th percentile (0..100) of ascending `sorted` values by the
 * nearest-rank method: the smallest value with at least p% of the values at
 * or below it. NaN for no values.
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  if (p <= 0) return sorted[0];
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(rank, sorted.length) - 1];
}

/** p50, p90, p99 and max of `samples`, rounded to 0.01 ms. */
export function summarise(
  samples: Samples,
): { p50: number; p90: number; p99: number; max: number } {
  const s = samples.sorted();
  return {
    p50: round2(percentile(s, 50)),
    p90: round2(percentile(s, 90)),
    p99: round2(percentile(s, 99)),
    max: round2(percentile(s, 100)),
  };
}

/** Rounds to two decimals (NaN stays NaN). */
export function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
