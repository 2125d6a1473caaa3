import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import {
  currentSchemaVersions,
  dataSchemasWith,
  eventDataSchemas,
  eventMetadata,
  isCustomEventType,
  isEventType,
  jsonValue,
} from '../../schema/events.ts';
import type { EventData, EventType, JsonValue } from '../../schema/events.ts';
import { limits } from '../../schema/limits.ts';
import { classifyRecordedError } from '../../projections/failure-classification.ts';
import type { ClassificationRule } from '../../projections/failure-classification.ts';
import { EventTooLargeError, InvalidEventError } from '../errors.ts';
import type { ValidationIssue } from '../errors.ts';
import { describeReceived, toValidationIssues } from '../validation.ts';

/** An event checked and serialised, ready for the append statement. */
export interface PreparedEvent {
  eventId: string;
  type: string;
  schemaVersion: number;
  /** JSON text of `data`. */
  data: string;
  /** JSON text of `metadata`. */
  metadata: string;
  occurredAt: Date;
}

const envelope = z.strictObject({
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
function isQuickJson(value: unknown, depth: number): boolean {
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

/**
 * Escapes in JSON text that PostgreSQL's jsonb refuses, each with what to tell the
 * producer. `JSON.stringify` writes paired surrogates as the characters themselves and
 * escapes only lone ones. Each pattern skips an escaped backslash followed by the letters,
 * and each has a cheap substring test first: almost no event has the sequence at all.
 */
const unstorableEscapes = [
  {
    hint: '\\u0000',
    pattern: /(?:^|[^\\])(?:\\\\)*\\u0000/,
    message:
      'expected text without NUL characters (\\u0000), which PostgreSQL cannot store, received a string containing one',
  },
  {
    hint: '\\ud',
    pattern: /(?:^|[^\\])(?:\\\\)*\\ud[89a-f][0-9a-f]{2}/,
    message:
      'expected well-formed Unicode text, which PostgreSQL can store, received a string with a lone UTF-16 surrogate',
  },
];

/** What is wrong with an event's JSON texts that PostgreSQL would refuse, or undefined. */
function unstorableText(data: string, metadata: string): string | undefined {
  for (const { hint, pattern, message } of unstorableEscapes) {
    if (
      (data.includes(hint) && pattern.test(data)) ||
      (metadata.includes(hint) && pattern.test(metadata))
    ) {
      return message;
    }
  }
  return undefined;
}

/** Times every store keeps exactly (PostgreSQL's own range is wider, a `Date`'s wider still). */

const knownTypes = Object.keys(eventDataSchemas).join(', ');

/** Throws `EventTooLargeError` when data and metadata take more bytes than the cap. */
function checkBytes(path: string, dataJson: string, metadataJson: string): void {
  // UTF-8 takes at most 3 bytes per UTF-16 unit, so most events need no byte count.
  if ((dataJson.length + metadataJson.length) * 3 > limits.eventBytes) {
    const bytes = Buffer.byteLength(dataJson) + Buffer.byteLength(metadataJson);
    if (bytes > limits.eventBytes) throw new EventTooLargeError(path, bytes, limits.eventBytes);
  }
}

/** The data of a validated `item.failed` or `job.failed`, as far as classifying reads it. */
type FailureData = { error: EventData<'item.failed'>['error'] } & Record<string, unknown>;

/**
 * The JSON of a failure's data with the category and `retryable` the rules give, so that
 * the rule is recorded and every later fold reads the same answer; undefined when the
 * producer chose a category. A `retryable` the producer sent is kept as sent. The same data
 * and rules give the same text, so a retried event is still the same event.
 */
function classifiedFailure(
  data: FailureData,
  rules: readonly ClassificationRule[],
): string | undefined {
  const { error } = data;
  if (error.category !== undefined) return undefined;
  const { category, retryable } = classifyRecordedError(error, rules);
  return JSON.stringify({
    ...data,
    error: { ...error, category, ...(error.retryable === undefined ? { retryable } : {}) },
  });
}

/**
 * Validates and serialises a batch of producer events. Throws `InvalidEventError` naming
 * every bad path, or `EventTooLargeError`; never touches the database. With `failureRules`,
 * a failure whose error has no category is stored with the category and `retryable` they
 * give (see `classifiedFailure`).
 */
export function prepareEvents(
  events: unknown,
  path: string,
  now: Date,
  checks: EventChecks = quickChecks,
  failureRules?: readonly ClassificationRule[],
): PreparedEvent[] {
  if (!Array.isArray(events)) {
    throw new InvalidEventError([
      { path, message: `expected an array of events, received ${describeReceived(events)}` },
    ]);
  }
  if (events.length === 0 || events.length > limits.eventsPerAppend) {
    throw new InvalidEventError([
      {
        path,
        message: `expected 1 to ${limits.eventsPerAppend} events, received ${events.length}`,
      },
    ]);
  }
  const issues: ValidationIssue[] = [];
  const prepared: PreparedEvent[] = [];
  const seen = new Set<string>();
  for (let index = 0; index < events.length; index++) {
    const at = `${path}[${index}]`;
    const event = prepareEvent(events[index], at, now, issues, checks, failureRules);
    if (!event) continue;
    if (seen.has(event.eventId)) {
      issues.push({
        path: `${at}.eventId`,
        message: `duplicate event id ${event.eventId} in one batch`,
      });
      continue;
    }
    seen.add(event.eventId);
    prepared.push(event);
  }
  if (issues.length > 0) throw new InvalidEventError(issues);
  return prepared;
}

function prepareEvent(
  input: unknown,
  path: string,
  now: Date,
  issues: ValidationIssue[],
  checks: EventChecks,
  failureRules: readonly ClassificationRule[] | undefined,
): PreparedEvent | undefined {
  const parsed = checks.envelope(input);
  if (!parsed.success) {
    issues.push(...toValidationIssues(parsed.error, path));
    return undefined;
  }
  const { type, data, eventId, occurredAt, metadata, schemaVersion } = parsed.data;
  const occurred = occurredAt === undefined ? now : new Date(occurredAt);
  if (!(occurred.getTime() >= limits.earliestTimeMs && occurred.getTime() <= limits.latestTimeMs)) {
    issues.push({
      path: `${path}.occurredAt`,
      message: `expected a time from 0001-01-01 to 9999-12-31, received ${occurred.toISOString()}`,
    });
    return undefined;
  }

  let dataJson: string;
  let metadataJson: string;
  try {
    dataJson = JSON.stringify(data ?? null);
    metadataJson = metadata === undefined ? '{}' : JSON.stringify(metadata);
  } catch (error) {
    issues.push({
      path: `${path}.data`,
      message: `expected JSON, received a value that cannot be serialised (${String(error)})`,
    });
    return undefined;
  }
  // JSON.stringify gives undefined, not an error, for a function or a symbol.
  if ((dataJson as string | undefined) === undefined) {
    issues.push({
      path: `${path}.data`,
      message: `expected JSON, received ${typeof data}`,
    });
    return undefined;
  }
  const unstorable = unstorableText(dataJson, metadataJson);
  if (unstorable !== undefined) {
    issues.push({ path: `${path}.data`, message: unstorable });
    return undefined;
  }
  checkBytes(path, dataJson, metadataJson);

  // What is checked must be what is stored: a class instance, a `toJSON` or a Date can
  // serialise to something else than what a schema sees, so those are checked as stored.
  const stored =
    typeof data === 'object' && data !== null && !isQuickJson(data, 0)
      ? (JSON.parse(dataJson) as unknown)
      : data;
  let version: number;
  if (isEventType(type)) {
    version = currentSchemaVersions[type];
    if (schemaVersion !== undefined && schemaVersion !== version) {
      issues.push({
        path: `${path}.schemaVersion`,
        message: `expected ${version} for '${type}', received ${schemaVersion}`,
      });
      return undefined;
    }
    const error = checks.data(type, stored);
    if (error) {
      issues.push(...toValidationIssues(error, `${path}.data`));
      return undefined;
    }
    // Only failures are looked at, so other events cost one comparison.
    if (failureRules !== undefined && (type === 'item.failed' || type === 'job.failed')) {
      const classified = classifiedFailure(stored as FailureData, failureRules);
      if (classified !== undefined) {
        dataJson = classified;
        checkBytes(path, dataJson, metadataJson);
      }
    }
  } else if (isCustomEventType(type)) {
    version = schemaVersion ?? 1;
    const error = checks.json(stored);
    if (error) {
      issues.push(...toValidationIssues(error, `${path}.data`));
      return undefined;
    }
  } else {
    issues.push({
      path: `${path}.type`,
      message: `expected a catalogued type (${knownTypes}) or x.<name>, received ${describeReceived(type)}`,
    });
    return undefined;
  }

  return {
    // PostgreSQL prints uuids in lower case; results are matched by id, and one id in
    // two cases is still one id.
    eventId: eventId?.toLowerCase() ?? randomUUID(),
    type,
    schemaVersion: version,
    data: dataJson,
    metadata: metadataJson,
    occurredAt: occurred,
  };
}
