import type { z } from 'zod';
import { InvalidInputError } from './errors.ts';
import type { ValidationIssue } from './errors.ts';

/**
 * Every validation issue is made here, in one style: a path in the ledger's notation
 * (`events[3].data.itemId`) and a message saying what was expected and what was received.
 */

/** Turns zod issues into issues whose paths start at `path`. */
export function toValidationIssues(error: z.ZodError, path: string): ValidationIssue[] {
  return error.issues.map((issue) => ({
    path: joinPath(path, issue.path),
    message: issue.message,
  }));
}

/** An issue at `path`: `expected <expected>, received <the value as JSON>`. */
export function expectedIssue(path: string, expected: string, received: unknown): ValidationIssue {
  return { path, message: `expected ${expected}, received ${JSON.stringify(received)}` };
}

/** `body` and the JSON pointer `/events/3/type` as `body.events[3].type`. */
export function pathFromPointer(base: string, pointer: string): string {
  let out = base;
  for (const segment of pointer.split('/').filter(Boolean)) {
    // The segment's own text, so a key like "007" reads as written.
    out += /^\d+$/.test(segment) ? `[${segment}]` : out ? `.${segment}` : segment;
  }
  return out;
}

function joinPath(base: string, segments: readonly PropertyKey[]): string {
  let out = base;
  for (const segment of segments) {
    out +=
      typeof segment === 'number' ? `[${segment}]` : out ? `.${String(segment)}` : String(segment);
  }
  return out;
}

/** Describes a received value briefly for error messages. */
export function describeReceived(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'string') {
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  }
  return typeof value;
}

/**
 * `input` parsed by `schema`, or an `InvalidInputError` naming every bad path under `path`.
 *
 * @example
 * const { limit } = parseInput(z.strictObject({ limit: z.number() }), options);
 */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown, path = ''): z.output<T> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw new InvalidInputError(toValidationIssues(parsed.error, path));
  return parsed.data;
}
