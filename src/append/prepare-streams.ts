import * as z from 'zod';
import { streamIdSchema } from '../../schema/events.ts';
import { limits } from '../../schema/limits.ts';
import type { ClassificationRule } from '../../projections/failure-classification.ts';
import { InvalidInputError, type ExpectedVersion } from '../errors.ts';
import { toValidationIssues } from '../validation.ts';
import { prepareEvents, quickChecks } from './prepare-events.ts';
import type { PreparedEvent } from './prepare-events.ts';

/**
 * The pure half of an append, shared by the ledger, the server and the client SDK: each
 * stream's part validated and serialised, with no database in reach.
 */

/** Where one appended event landed. */
export interface AppendedEvent {
  eventId: string;
  position: bigint;
  version: number;
}

/** The outcome of appending to one stream. */
export interface AppendResult {
  streamId: string;
  /** Pass this as `expectedVersion` to append next without a conflict. */
  nextExpectedVersion: number;
  /**
   * The log cursor of the last of these events: pass it to `ledger.readsAfter` (or the
   * `Headway-Read-After` header) to read from a replica only once it has replayed them.
   */
  cursor: string;
  /** One entry per input event, in input order. */
  events: AppendedEvent[];
}

/** One stream's part of an `appendMany` call. */
export interface StreamAppend {
  streamId: string;
  events: readonly unknown[];
  expectedVersion?: ExpectedVersion;
}

const expectedVersionSchema = z.union([
  z.literal(['any', 'no_stream', 'stream_exists']),
  z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
]);

/** One stream's part of an append, validated and serialised. */
export interface PreparedStream {
  streamId: string;
  expectedVersion: ExpectedVersion;
  events: PreparedEvent[];
}

/**
 * Validates every stream's part; throws before anything reaches the database. With
 * `failureRules`, failures without a category are stored classified (see `prepareEvents`).
 */
export function prepareStreams(
  batches: readonly StreamAppend[],
  now: Date,
  failureRules?: readonly ClassificationRule[],
): PreparedStream[] {
  if (batches.length === 0 || batches.length > limits.streamsPerAppend) {
    throw new InvalidInputError([
      {
        path: 'streams',
        message: `expected 1 to ${limits.streamsPerAppend} streams, received ${batches.length}`,
      },
    ]);
  }
  const seenStreams = new Set<string>();
  const seenEvents = new Set<string>();
  return batches.map((batch, index) => {
    const path = batches.length === 1 ? '' : `streams[${index}].`;
    const streamId = streamIdSchema.safeParse(batch.streamId);
    if (!streamId.success) {
      throw new InvalidInputError(toValidationIssues(streamId.error, `${path}streamId`));
    }
    const expected = expectedVersionSchema.safeParse(batch.expectedVersion ?? 'any');
    if (!expected.success) {
      throw new InvalidInputError([
        {
          path: `${path}expectedVersion`,
          message: `expected 'any', 'no_stream', 'stream_exists' or a version number >= 0, received ${JSON.stringify(batch.expectedVersion)}`,
        },
      ]);
    }
    if (seenStreams.has(streamId.data)) {
      throw new InvalidInputError([
        { path: `${path}streamId`, message: `stream '${streamId.data}' appears twice in one call` },
      ]);
    }
    seenStreams.add(streamId.data);
    const events = prepareEvents(batch.events, `${path}events`, now, quickChecks, failureRules);
    for (const [eventIndex, event] of events.entries()) {
      if (seenEvents.has(event.eventId)) {
        throw new InvalidInputError([
          {
            path: `${path}events[${eventIndex}].eventId`,
            message: `duplicate event id ${event.eventId} in one call`,
          },
        ]);
      }
      seenEvents.add(event.eventId);
    }
    return { streamId: streamId.data, expectedVersion: expected.data, events };
  });
}
