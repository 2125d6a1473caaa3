import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import {
  currentSchemaVersions,
  eventDataSchemas,
  eventMetadata,
  isCustomEventType,
  isEventType,
  jsonValue,
} from '../schema/events.ts';
import { limits } from '../schema/limits.ts';
import { EventTooLargeError, InvalidEventError } from './errors.ts';
import type { ValidationIssue } from './errors.ts';

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
  schemaVersion: z.number().int().positive().max(1_000).optional(),
});

/** A `\u0000` escape in JSON text (not an escaped backslash followed by `u0000`). */
const escapedNul = /(?:^|[^\\])(?:\\\\)*\\u0000/;

/** The cheap substring test first: almost no event has the sequence at all. */
const hasEscapedNul = (json: string) => json.includes('\\u0000') && escapedNul.test(json);

const knownTypes = Object.keys(eventDataSchemas).join(', ');

/** Turns zod issues into issues whose paths start at `path`. */
export function toValidationIssues(error: z.ZodError, path: string): ValidationIssue[] {
  return error.issues.map((issue) => ({
    path: joinPath(path, issue.path),
    message: issue.message,
  }));
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
 * Validates and serialises a batch of producer events. Throws `InvalidEventError` naming
 * every bad path, or `EventTooLargeError`; never touches the database.
 */
export function prepareEvents(events: unknown, path: string, now: Date): PreparedEvent[] {
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
  events.forEach((input: unknown, index) => {
    const at = `${path}[${index}]`;
    const event = prepareEvent(input, at, now, issues);
    if (!event) return;
    if (seen.has(event.eventId)) {
      issues.push({
        path: `${at}.eventId`,
        message: `duplicate event id ${event.eventId} in one batch`,
      });
      return;
    }
    seen.add(event.eventId);
    prepared.push(event);
  });
  if (issues.length > 0) throw new InvalidEventError(issues);
  return prepared;
}

function prepareEvent(
  input: unknown,
  path: string,
  now: Date,
  issues: ValidationIssue[],
): PreparedEvent | undefined {
  const parsed = envelope.safeParse(input);
  if (!parsed.success) {
    issues.push(...toValidationIssues(parsed.error, path));
    return undefined;
  }
  const { type, data, eventId, occurredAt, metadata, schemaVersion } = parsed.data;

  let dataJson: string;
  let metadataJson: string;
  try {
    dataJson = JSON.stringify(data ?? null);
    metadataJson = JSON.stringify(metadata ?? {});
  } catch (error) {
    issues.push({
      path: `${path}.data`,
      message: `expected JSON, received a value that cannot be serialised (${String(error)})`,
    });
    return undefined;
  }
  if (hasEscapedNul(dataJson) || hasEscapedNul(metadataJson)) {
    issues.push({
      path: `${path}.data`,
      message:
        'expected text without NUL characters (\\u0000), which PostgreSQL cannot store, received a string containing one',
    });
    return undefined;
  }
  const bytes = Buffer.byteLength(dataJson) + Buffer.byteLength(metadataJson);
  if (bytes > limits.eventBytes) throw new EventTooLargeError(path, bytes, limits.eventBytes);

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
    const result = eventDataSchemas[type].safeParse(data);
    if (!result.success) {
      issues.push(...toValidationIssues(result.error, `${path}.data`));
      return undefined;
    }
  } else if (isCustomEventType(type)) {
    version = schemaVersion ?? 1;
    const result = jsonValue.safeParse(data);
    if (!result.success) {
      issues.push(...toValidationIssues(result.error, `${path}.data`));
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
    occurredAt: occurredAt === undefined ? now : new Date(occurredAt),
  };
}
