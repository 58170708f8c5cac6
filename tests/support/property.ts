/**
 * Settings every fast-check property shares: `PROPERTY_SEED` reproduces a
 * run (the seed is printed once per test file and in every failure),
 * `PROPERTY_RUNS` sets the number of cases per property and store (40).
 *
 * @module
 */
import { testEnv } from "./env.ts";

/** Cases per property and store. */
export const RUNS = Number(testEnv.PROPERTY_RUNS || 40);

/** The seed of this run. */
export const SEED = testEnv.PROPERTY_SEED
  ? Number(testEnv.PROPERTY_SEED)
  : Math.floor(Math.random() * 2 ** 31);

console.log(`property tests: seed ${SEED}, ${RUNS} runs each (PROPERTY_SEED=${SEED} reproduces)`);

/** Options for `fc.assert`: the shared seed and runs, every failure reported. */
export const fcOptions = { numRuns: RUNS, seed: SEED, endOnFailure: false };
