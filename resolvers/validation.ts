/**
 * Input rules of the GraphQL contract, in one place: every store receives
 * only input that passed here, so nothing is written when input is rejected.
 *
 * @module
 */
import { GraphQLError } from "graphql";

/** Longest word or definition, in Unicode code points (the classic `varchar(256)`). */
export const MAX_TEXT = 256;
/** Largest page. */
export const MAX_LIMIT = 1000;

// C0 and C1 controls and DEL; tab (\u0009) and newline (\u000A) are handled per field.
// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/;
const TAB_OR_NEWLINE = /[\t\n]/;

/** A BAD_USER_INPUT error naming the argument at fault. */
export function badInput(argument: string, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: "BAD_USER_INPUT", argument } });
}

/**
 * Trims `value` and checks it is 1..256 code points of well-formed Unicode
 * without control characters (tab and newline are allowed when
 * `multiline`). Returns the trimmed text.
 */
export function validText(argument: string, value: string, multiline: boolean): string {
  const text = value.trim();
  checkUnicode(argument, text);
  const length = [...text].length;
  if (length === 0) throw badInput(argument, `${argument} must not be empty`);
  if (length > MAX_TEXT) {
    throw badInput(argument, `${argument} must be at most ${MAX_TEXT} characters, got ${length}`);
  }
  if (CONTROL.test(text) || (!multiline && TAB_OR_NEWLINE.test(text))) {
    throw badInput(
      argument,
      `${argument} must not contain control characters${
        multiline ? " other than tab and newline" : ""
      }`,
    );
  }
  return text;
}

/** Checks a search needle (taken literally, not trimmed); returns undefined for "match all". */
export function validSearch(value: string | null | undefined): string | undefined {
  if (value === null || value === undefined || value === "") return undefined;
  checkUnicode("search", value);
  if ([...value].length > MAX_TEXT) {
    throw badInput("search", `search must be at most ${MAX_TEXT} characters`);
  }
  if (CONTROL.test(value)) throw badInput("search", "search must not contain control characters");
  return value;
}

/** A canonical lower-case UUIDv7: the only id the gateway issues. */
export const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** `YYYY-MM-DDTHH:mm:ss.sssZ`, the only timestamp form the gateway issues. */
const ISO_UTC_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Checks an id: one the gateway could have issued, else BAD_USER_INPUT. */
export function validId(id: string): string {
  if (!UUID_V7.test(id)) {
    throw badInput("id", "id must be a word's id as the gateway issued it (a lower-case UUIDv7)");
  }
  return id;
}

/** Checks an `expectedUpdatedAt`: absent, or a timestamp as the gateway issues them. */
export function validRevision(value: string | null | undefined): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (!ISO_UTC_MS.test(value) || Number.isNaN(Date.parse(value))) {
    throw badInput(
      "expectedUpdatedAt",
      "expectedUpdatedAt must be a word's updatedAt (or createdAt) as the gateway returned it",
    );
  }
  return value;
}

/** Checks `wordsConnection`'s page size. */
export function validFirst(first: number): number {
  if (!Number.isInteger(first) || first < 1 || first > MAX_LIMIT) {
    throw badInput("first", `first must be from 1 to ${MAX_LIMIT}, got ${first}`);
  }
  return first;
}

/** Checks paging arguments. */
export function validPage(limit: number, offset: number): { limit: number; offset: number } {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw badInput("limit", `limit must be from 1 to ${MAX_LIMIT}, got ${limit}`);
  }
  if (!Number.isInteger(offset) || offset < 0) {
    throw badInput("offset", `offset must be 0 or more, got ${offset}`);
  }
  return { limit, offset };
}

function checkUnicode(argument: string, text: string): void {
  if (!text.isWellFormed()) {
    throw badInput(argument, `${argument} must be valid Unicode (it has a lone surrogate)`);
  }
}
