import type { Kysely } from 'kysely';
import * as z from 'zod';
import type { Database } from '../../schema/database.ts';
import type { EventInput } from '../../schema/events.ts';
import { eventMetadata } from '../../schema/events.ts';
import { limits } from '../../schema/limits.ts';
import type { RecordedEvent } from '../../schema/recorded-event.ts';
import { executeAppendCounting } from './append-statement.ts';
import { prepareStreams } from './prepare-streams.ts';
import { HeadwayError, InvalidEventError, JobNotStartedError } from '../errors.ts';
import { toValidationIssues } from '../validation.ts';

/** One line of an NDJSON export: the whole envelope, positions as strings. */
export interface ExportLine {
  streamId: string;
  version: number;
  eventId: string;
  type: string;
  schemaVersion: number;
  data: unknown;
  metadata: unknown;
  occurredAt: string;
  recordedAt: string;
  position: string;
}

/** The export form of a recorded event. */
export function toExportLine(event: RecordedEvent): ExportLine {
  return {
    streamId: event.streamId,
    version: event.version,
    eventId: event.eventId,
    type: event.type,
    schemaVersion: event.schemaVersion,
    data: event.data,
    metadata: event.metadata,
    occurredAt: event.occurredAt.toISOString(),
    recordedAt: event.recordedAt.toISOString(),
    position: event.position.toString(),
  };
}

const importLine = z.object({
  streamId: z.string().min(1).max(limits.idLength),
  version: z.number().int().positive(),
  eventId: z.uuid(),
  type: z.string().min(1).max(limits.nameLength),
  schemaVersion: z.number().int().positive(),
  data: z.unknown(),
  metadata: eventMetadata.optional(),
  occurredAt: z.iso.datetime({ offset: true }),
});

/** What an import did. */
export interface ImportResult {
  /** Events read (one per non-empty line). */
  events: number;
  streams: number;
  /** Events this import stored. */
  imported: number;
  /** Events the ledger held already, with the same content: an earlier import's. */
  alreadyPresent: number;
}

/** Longest line an import accepts, in characters. */
export const maxImportLineLength = 1024 * 1024;
const streamChunk = 1_000;
const bufferedEvents = 20_000;

/** One stream's events read from an import and not yet written, at their own versions. */
export interface ImportedStream {
  streamId: string;
  /** The version of its first event: the stream is expected at the one before. */
  firstVersion: number;
  /** The line of its first event, named when the job was never started. */
  firstLine: number;
  events: EventInput[];
}

/**
 * Where an import writes: each stream's events at their own versions, idempotent by event
 * id; resolves to how many of them were new (the others were there already).
 */
export type ImportWriter = (streams: readonly ImportedStream[]) => Promise<number>;

/**
 * Imports NDJSON export lines, idempotent by event id: importing the same file twice
 * writes it once, and says how many events were new. Each stream keeps its versions (a
 * stream that already holds other events is a `ConcurrencyError`, an event id the ledger
 * holds with other content an `IdempotencyConflictError` naming it, a job whose first
 * event is not `job.started` a `JobNotStartedError` naming its line); positions and
 * recording times are the target's own.
 */
export function importNdjson(
  ledger: { db: Kysely<Database> },
  lines: AsyncIterable<string> | Iterable<string>,
): Promise<ImportResult> {
  return importNdjsonWith((streams) => writeStreams(ledger.db, streams), lines);
}

/**
 * `importNdjson` through any writer (a store, a server): reads and checks the lines, and
 * hands each stream's events over in order, in chunks, with their own ids and versions.
 */
export async function importNdjsonWith(
  write: ImportWriter,
  lines: AsyncIterable<string> | Iterable<string>,
): Promise<ImportResult> {
  const buffers = new Map<string, ImportedStream>();
  const lastVersion = new Map<string, number>();
  let buffered = 0;
  let count = 0;
  let imported = 0;
  let lineNumber = 0;
  const flush = async () => {
    const streams = [...buffers.values()];
    buffers.clear();
    buffered = 0;
    if (streams.length > 0) imported += await write(streams);
  };
  for await (const raw of lines) {
    lineNumber += 1;
    const line = parseImportLine(raw, `line ${lineNumber}`);
    if (!line) continue;
    const expected = (lastVersion.get(line.streamId) ?? 0) + 1;
    if (line.version !== expected) {
      throw new HeadwayError(
        'invalid_input',
        `line ${lineNumber}: expected version ${expected} of stream '${line.streamId}', received ${line.version}; an export lists each stream's events in order`,
      );
    }
    lastVersion.set(line.streamId, line.version);
    let buffer = buffers.get(line.streamId);
    if (!buffer) {
      buffer = {
        streamId: line.streamId,
        firstVersion: line.version,
        firstLine: lineNumber,
        events: [],
      };
      buffers.set(line.streamId, buffer);
    }
    buffer.events.push(eventOf(line));
    buffered += 1;
    count += 1;
    if (buffer.events.length >= streamChunk || buffered >= bufferedEvents) await flush();
  }
  await flush();
  return { events: count, streams: lastVersion.size, imported, alreadyPresent: count - imported };
}

/** The event an export line appends: its own id, time, schema version and metadata. */
function eventOf(line: z.infer<typeof importLine>): EventInput {
  return {
    type: line.type,
    data: line.data,
    eventId: line.eventId,
    occurredAt: line.occurredAt,
    schemaVersion: line.schemaVersion,
    ...(line.metadata ? { metadata: line.metadata } : {}),
  } as EventInput;
}

/**
 * A job's refusal for not starting with `job.started`, named by the line of its first
 * event rather than by the batch of streams it was written with.
 */
export function notStartedAtLine(
  error: JobNotStartedError,
  streams: readonly ImportedStream[],
): JobNotStartedError {
  const line = streams.find((stream) => stream.streamId === error.jobId)?.firstLine;
  return new JobNotStartedError(
    error.jobId,
    error.received,
    `line ${line ?? '?'} holds its first event; an export lists each job from its job.started`,
  );
}

/** One line checked as an export line; null for a blank line. */
function parseImportLine(raw: string, path: string): z.infer<typeof importLine> | null {
  const text = raw.trim();
  if (text === '') return null;
  if (text.length > maxImportLineLength) {
    throw new InvalidEventError([
      {
        path,
        message: `expected at most ${maxImportLineLength} characters, received ${text.length}`,
      },
    ]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InvalidEventError([{ path, message: `expected JSON, received ${String(error)}` }]);
  }
  const parsed = importLine.safeParse(json);
  if (!parsed.success) throw new InvalidEventError(toValidationIssues(parsed.error, path));
  return parsed.data;
}

/** Appends imported streams to a store at their own versions; returns how many were new. */
async function writeStreams(
  db: Kysely<Database>,
  streams: readonly ImportedStream[],
): Promise<number> {
  let written = 0;
  for (let start = 0; start < streams.length; start += limits.streamsPerAppend) {
    const prepared = prepareStreams(
      streams.slice(start, start + limits.streamsPerAppend).map((stream) => ({
        streamId: stream.streamId,
        events: stream.events,
        expectedVersion: stream.firstVersion - 1,
      })),
      new Date(),
    );
    try {
      written += (await executeAppendCounting(db, prepared)).written;
    } catch (error) {
      throw error instanceof JobNotStartedError ? notStartedAtLine(error, streams) : error;
    }
  }
  return written;
}
