import * as z from 'zod';
import {
  dataSchemasWith,
  eventDataSchemas,
  eventMetadata,
  jsonValue,
} from '../../schema/events.ts';
import type { EventType, JsonValue } from '../../schema/events.ts';
import { limits } from '../../schema/limits.ts';

/** How an event's envelope and data are checked: zod's parser, or compiled schemas first. */

/** The envelope of an event as a producer sends it. */
export const envelope = z.strictObject({
  type: z.string().min(1).max(limits.nameLength),
  data: z.unknown(),
  eventId: z.uuid().optional(),
  occurredAt: z.union([z.date(), z.iso.datetime({ offset: true })]).optional(),
  metadata: eventMetadata.optional(),
  schemaVersion: z.number().int().positive().max(limits.schemaVersion).optional(),
});

/** Beyond this depth the quick JSON check leaves the answer to zod (and keeps off the stack limit). */
const quickJsonDepth = 64;

/**
 * True only for values `jsonValue` accepts: strings, finite numbers, booleans, null, and arrays
 * and plain objects of them. False means "ask zod", not "invalid": symbol keys and deep
 * nesting are left to the full check.
 */
export function isQuickJson(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object': {
      if (value === null) return true;
      if (depth >= quickJsonDepth) return false;
      if (Array.isArray(value)) {
        for (let index = 0; index < value.length; index++) {
          if (!isQuickJson(value[index], depth + 1)) return false;
        }
        return true;
      }
      // zod's own test, so that this agrees with `z.record` on odd prototypes.
      if (!z.util.isPlainObject(value) || Object.getOwnPropertySymbols(value).length > 0) {
        return false;
      }
      for (const key of Object.keys(value)) {
        if (!isQuickJson(value[key], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/** `jsonValue` without the recursion that `z.compile` refuses; stricter, never looser. */
const quickJson = z.custom<JsonValue>((value) => isQuickJson(value, 0));

/**
 * How events are checked. `zodChecks` is zod's runtime parser alone. `quickChecks` first runs
 * schemas compiled by `z.compile` and sends whatever they do not accept to that same runtime
 * parser, so every rejection and every issue is still zod's own. Tests compare the two.
 */
export interface EventChecks {
  envelope: (input: unknown) => ReturnType<typeof envelope.safeParse>;
  /** The issues of a catalogued type's data, or undefined when it is valid. */
  data: (type: EventType, data: unknown) => z.ZodError | undefined;
  /** The issues of a custom type's data, or undefined when it is valid. */
  json: (data: unknown) => z.ZodError | undefined;
}

/** zod's runtime parser alone: the reference the fast path is tested against. */
export const zodChecks: EventChecks = {
  envelope: (input) => envelope.safeParse(input),
  data: (type, data) => eventDataSchemas[type].safeParse(data).error,
  json: (data) => jsonValue.safeParse(data).error,
};

const quickDataSchemas = dataSchemasWith(quickJson);
// Compiled on first use: the whole catalogue takes ~20 ms, which readers need not pay.
let compiledEnvelope: typeof envelope | undefined;
const compiledData: Partial<Record<EventType, z.ZodType>> = {};

/** Compiled schemas first, zod's runtime parser for anything they do not accept. */
export const quickChecks: EventChecks = {
  envelope: (input) => (compiledEnvelope ??= z.compile(envelope)).safeParse(input),
  // `validate` builds no output value; nothing here would read it.
  data: (type, data) =>
    (compiledData[type] ??= z.compile(quickDataSchemas[type])).validate(data)
      ? undefined
      : eventDataSchemas[type].safeParse(data).error,
  json: (data) => (isQuickJson(data, 0) ? undefined : jsonValue.safeParse(data).error),
};
