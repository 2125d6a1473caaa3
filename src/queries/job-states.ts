import { logStart } from '../cursors.ts';
import { limits } from '../../schema/limits.ts';
import type { RecordedEvent } from '../../schema/recorded-event.ts';
import { jobEta } from '../../projections/job-eta.ts';
import type { JobEtaState } from '../../projections/job-eta.ts';
import { fold } from '../../projections/projection.ts';
import { jobsProjection, mainPart } from '../persisted/persisted-projection.ts';
import { readStateParts } from '../persisted/projection-tables.ts';
import {
  readCurrentJobsGeneration,
  readStoredJobs,
  selectStoredJobs,
} from '../persisted/stored-jobs.ts';
import type { StoredJobsFilter } from '../persisted/stored-jobs.ts';
import type { JobSnapshot } from '../../projections/job-rollup.ts';
import type { Generation } from '../persisted/projection-tables.ts';
import type { StoredJob } from '../persisted/stored-jobs.ts';
import type { JobViewsContext } from './job-state.ts';

/** Streams per read of a tail; `readAll` takes at most 1,000 stream ids. */
const maxStreamsPerRead = 1_000;

/** A stored main part as a state (without items). */
export function storedState(row: StoredJob): JobEtaState {
  return jobsProjection.join(new Map([[mainPart, row.value]]));
}

/** These jobs' states, stored plus their tails; unknown ids are left out. */
export async function readStatesOf(
  context: JobViewsContext,
  jobIds: readonly string[],
  generation: Generation | null,
): Promise<Map<string, JobEtaState>> {
  const stored = new Map<string, JobEtaState>();
  if (jobIds.length === 0) return stored;
  if (generation) {
    const rows = await readStoredJobs(context.log.db, generation, jobIds);
    for (const row of rows) stored.set(row.key, storedState(row));
  }
  async function* tails() {
    for (let start = 0; start < jobIds.length; start += maxStreamsPerRead) {
      const streamIds = jobIds.slice(start, start + maxStreamsPerRead);
      yield* tailEvents(context, generation, { streamIds });
    }
  }
  return withTail(context, stored, generation, tails());
}

/** The log past the generation's checkpoint (all of it without one), event by event. */
export async function* tailEvents(
  context: JobViewsContext,
  generation: Generation | null,
  filter?: { streamIds: string[] },
): AsyncGenerator<RecordedEvent> {
  let after = generation?.cursor ?? logStart;
  for (;;) {
    const page = await context.log.readLog(
      { ...filter, after, limit: limits.readPage },
      { gapSafe: false },
    );
    yield* page.events;
    after = page.next;
    if (page.events.length < limits.readPage) return;
  }
}

/**
 * `stored` brought up to date with the tail. Each job the tail touches is read again
 * whole-or-nothing (main part and the buckets its events touch, in one statement), so its
 * parts come from one committed state, then folded with the tail.
 */
export async function withTail(
  context: JobViewsContext,
  stored: Map<string, JobEtaState>,
  generation: Generation | null,
  events: AsyncIterable<RecordedEvent>,
): Promise<Map<string, JobEtaState>> {
  const tail = new Map<string, RecordedEvent[]>();
  for await (const event of events) {
    const stream = tail.get(event.streamId);
    if (stream) stream.push(event);
    else tail.set(event.streamId, [event]);
  }
  if (tail.size === 0) return stored;
  const parts = new Map<string, Map<string, unknown>>();
  if (generation) {
    const needed = new Set([mainPart]);
    for (const stream of tail.values()) {
      for (const event of stream)
        for (const part of jobsProjection.partsFor(event)) needed.add(part);
    }
    const rows = await readStateParts(
      context.log.db,
      jobsProjection.name,
      generation.generation,
      [...tail.keys()],
      [...needed],
    );
    for (const [key, value] of rows) parts.set(key, value);
  }
  for (const [key, stream] of tail) {
    const base = parts.has(key) ? jobsProjection.join(parts.get(key)!) : jobEta.initial();
    stored.set(key, fold(jobEta, stream, base));
  }
  return stored;
}

/** These jobs' progress without items, stored plus their tails; unknown ids are left out. */
export async function readJobSnapshots(
  context: JobViewsContext,
  jobIds: readonly string[],
): Promise<Map<string, JobSnapshot>> {
  const generation = await readCurrentJobsGeneration(context.log.db);
  const states = await readStatesOf(context, jobIds, generation);
  return new Map([...states].map(([jobId, state]) => [jobId, snapshotOf(state)]));
}

/** Beyond this many jobs in the tail, the stored rows are read without leaving them out. */
const maxExcludedKeys = 5_000;

/**
 * Every job the log past the stored checkpoint touches, folded up to date, plus the stored
 * jobs `stored` selects. The tail is read first and its jobs are left out of the stored
 * rows (up to 5,000 of them; `exclusive` says whether they were), so a stale stored row
 * never stands in for a job the tail changed, nor takes a place within a limit.
 *
 * @example
 * await tailAndStoredStates(context, generation, ({ except }) => ({ ...except, statuses: ['running'] }));
 */
export async function tailAndStoredStates(
  context: JobViewsContext,
  generation: Generation | null,
  stored: (tail: { except: StoredJobsFilter; exclusive: boolean }) => StoredJobsFilter,
): Promise<Map<string, JobEtaState>> {
  const states = await withTail(context, new Map(), generation, tailEvents(context, generation));
  if (!generation) return states;
  const changed = [...states.keys()];
  const exclusive = changed.length <= maxExcludedKeys;
  const filter = stored({ except: exclusive ? { except: changed } : {}, exclusive });
  for (const row of await selectStoredJobs(context.log.db, generation, filter)) {
    if (!states.has(row.key)) states.set(row.key, storedState(row));
  }
  return states;
}

/** A state's progress without its item table: what views and payloads show. */
export function snapshotOf(state: JobEtaState): JobSnapshot {
  const { items: _items, ...progress } = state.progress;
  return progress;
}
