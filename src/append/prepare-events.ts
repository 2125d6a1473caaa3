import {
  currentSchemaVersions,
  eventDataSchemas,
  isCustomEventType,
  isEventType,
} from '../../schema/events.ts';
import type { EventData } from '../../schema/events.ts';
import { limits } from '../../schema/limits.ts';
import { classifyRecordedError } from '../../projections/failure-classification.ts';
import type { ClassificationRule } from '../../projections/failure-classification.ts';
import { EventTooLargeError, InvalidEventError } from '../errors.ts';
import type { ValidationIssue } from '../errors.ts';
import { describeReceived, toValidationIssues } from '../validation.ts';
import { isQuickJson, quickChecks, type EventChecks } from './event-checks.ts';

export { quickChecks, zodChecks, type EventChecks } from './event-checks.ts';

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

const knownTypes = Object.keys(eventDataSchemas).join(', ');
// TextEncoder, not Buffer: the client validates with this module in browsers too.
const utf8 = new TextEncoder();

/** Throws `EventTooLargeError` when data and metadata take more bytes than the cap. */
function checkBytes(path: string, dataJson: string, metadataJson: string): void {
  // UTF-8 takes at most 3 bytes per UTF-16 unit, so most events need no byte count.
  if ((dataJson.length + metadataJson.length) * 3 > limits.eventBytes) {
    const bytes = utf8.encode(dataJson).length + utf8.encode(metadataJson).length;
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
  const json = serialise(data, metadata, path, issues);
  if (!json) return undefined;
  const checked = checkData(type, schemaVersion, data, json, path, issues, checks, failureRules);
  if (!checked) return undefined;
  return {
    // PostgreSQL prints uuids in lower case; results are matched by id, and one id in
    // two cases is still one id.
    eventId: eventId?.toLowerCase() ?? crypto.randomUUID(),
    type,
    schemaVersion: checked.version,
    data: checked.dataJson,
    metadata: json.metadataJson,
    occurredAt: occurred,
  };
}

/** An event's data and metadata as the JSON text PostgreSQL will store, or an issue. */
function serialise(
  data: unknown,
  metadata: unknown,
  path: string,
  issues: ValidationIssue[],
): { dataJson: string; metadataJson: string } | undefined {
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
    issues.push({ path: `${path}.data`, message: `expected JSON, received ${typeof data}` });
    return undefined;
  }
  const unstorable = unstorableText(dataJson, metadataJson);
  if (unstorable !== undefined) {
    issues.push({ path: `${path}.data`, message: unstorable });
    return undefined;
  }
  checkBytes(path, dataJson, metadataJson);
  return { dataJson, metadataJson };
}

/**
 * The data checked against its type (catalogued, or custom JSON) and the schema version
 * stored with it; a failure classified by the rules. Undefined, with an issue, when wrong.
 */
function checkData(
  type: string,
  schemaVersion: number | undefined,
  data: unknown,
  json: { dataJson: string; metadataJson: string },
  path: string,
  issues: ValidationIssue[],
  checks: EventChecks,
  failureRules: readonly ClassificationRule[] | undefined,
): { version: number; dataJson: string } | undefined {
  let { dataJson } = json;
  // What is checked must be what is stored: a class instance, a `toJSON` or a Date can
  // serialise to something else than what a schema sees, so those are checked as stored.
  const stored =
    typeof data === 'object' && data !== null && !isQuickJson(data, 0)
      ? (JSON.parse(dataJson) as unknown)
      : data;
  if (isEventType(type)) {
    const version = currentSchemaVersions[type];
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
        checkBytes(path, dataJson, json.metadataJson);
      }
    }
    return { version, dataJson };
  }
  if (isCustomEventType(type)) {
    const error = checks.json(stored);
    if (error) {
      issues.push(...toValidationIssues(error, `${path}.data`));
      return undefined;
    }
    return { version: schemaVersion ?? 1, dataJson };
  }
  issues.push({
    path: `${path}.type`,
    message: `expected a catalogued type (${knownTypes}) or x.<name>, received ${describeReceived(type)}`,
  });
  return undefined;
}
