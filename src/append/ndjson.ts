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

/**
 * Imports NDJSON export lines, idempotent by event id: importing the same file twice
 * writes it once, and says how many events were new. Each stream keeps its versions (a
 * stream that already holds other events is a `ConcurrencyError`, an event id the ledger
 * holds with other content an `IdempotencyConflictError` naming it, a job whose first
 * event is not `job.started` a `JobNotStartedError` naming its line); positions and
 * recording times are the target's own.
 */
export async function importNdjson(
  ledger: { db: Kysely<Database> },
  lines: AsyncIterable<string> | Iterable<string>,
): Promise<ImportResult> {
  const buffers = new Map<string, StreamBuffer>();
  const lastVersion = new Map<string, number>();
  let buffered = 0;
  let count = 0;
  let imported = 0;
  let lineNumber = 0;
  const flush = async () => {
    const streams = [...buffers.entries()];
    buffers.clear();
    buffered = 0;
    imported += await writeStreams(ledger.db, streams);
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
      buffer = { firstVersion: line.version, firstLine: lineNumber, events: [] };
      buffers.set(line.streamId, buffer);
    }
    buffer.events.push({
      type: line.type,
      data: line.data,
      eventId: line.eventId,
      occurredAt: line.occurredAt,
      schemaVersion: line.schemaVersion,
      ...(line.metadata ? { metadata: line.metadata } : {}),
    } as EventInput);
    buffered += 1;
    count += 1;
    if (buffer.events.length >= streamChunk || buffered >= bufferedEvents) await flush();
  }
  await flush();
  return { events: count, streams: lastVersion.size, imported, alreadyPresent: count - imported };
}

/** One stream's events read from the file and not yet written. */
interface StreamBuffer {
  firstVersion: number;
  firstLine: number;
  events: EventInput[];
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

/** Appends buffered streams at their own versions; returns how many events were new. */
async function writeStreams(
  db: Kysely<Database>,
  streams: [string, StreamBuffer][],
): Promise<number> {
  let written = 0;
  for (let start = 0; start < streams.length; start += limits.streamsPerAppend) {
    const prepared = prepareStreams(
      streams.slice(start, start + limits.streamsPerAppend).map(([streamId, buffer]) => ({
        streamId,
        events: buffer.events,
        expectedVersion: buffer.firstVersion - 1,
      })),
      new Date(),
    );
    try {
      written += (await executeAppendCounting(db, prepared)).written;
    } catch (error) {
      if (!(error instanceof JobNotStartedError)) throw error;
      // Named by its line, not by the batch of streams it was written with.
      const line = streams.find(([streamId]) => streamId === error.jobId)?.[1].firstLine;
      throw new JobNotStartedError(
        error.jobId,
        error.received,
        `line ${line ?? '?'} holds its first event; an export lists each job from its job.started`,
      );
    }
  }
  return written;
}
