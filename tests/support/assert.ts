/**
 * Assertions for tests. JSR's @std/assert is not reachable here, so this
 * re-exports Node's built-in `node:assert` under the familiar names.
 *
 * @module
 */
import assert from "node:assert/strict";

/** Deep strict equality. */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  assert.deepStrictEqual(actual, expected, message);
}

/** Truthiness. */
export function assertOk(value: unknown, message?: string): asserts value {
  assert.ok(value, message);
}

/** Inequality. */
export function assertNotEquals<T>(actual: T, expected: T, message?: string): void {
  assert.notDeepStrictEqual(actual, expected, message);
}

/** Substring. */
export function assertStringIncludes(actual: string, expected: string, message?: string): void {
  assert.ok(
    actual.includes(expected),
    message ??
      `expected ${JSON.stringify(actual.slice(0, 300))} to include ${JSON.stringify(expected)}`,
  );
}

/** Runs `fn`, expects it to throw an instance of `type`, returns the error. */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  type: new (...args: never[]) => E,
): E {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof type, `expected ${type.name}, got ${e}`);
    return e as E;
  }
  throw new assert.AssertionError({ message: `expected ${type.name} to be thrown` });
}

/** Awaits `fn`, expects it to reject with an instance of `type`, returns the error. */
export async function assertRejects<E extends Error>(
  fn: () => Promise<unknown>,
  type: new (...args: never[]) => E,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof type, `expected ${type.name}, got ${e}`);
    return e as E;
  }
  throw new assert.AssertionError({ message: `expected ${type.name} to be rejected` });
}
