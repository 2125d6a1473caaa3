import type { EventInput } from '../schema/events.ts';
import { seededRandom } from '../src/demo/seeded-random.ts';

/**
 * Deterministic job histories for the benchmark: the same seed gives the same events,
 * ids and JSON text on every run, so figures from different runs compare like for like.
 */

/** FNV-1a, to derive a per-job seed from its id. */
function hashString(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** A version 4 UUID drawn from the PRNG (producers supply their own event ids). */
function uuidFrom(random: () => number): string {
  let hex = '';
  for (let index = 0; index < 4; index++) {
    hex += Math.floor(random() * 4_294_967_296)
      .toString(16)
      .padStart(8, '0');
  }
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20)}`;
}

const stages = ['extract', 'analyze', 'output'] as const;
const itemTypes = ['pdf', 'html', 'docx', 'image'] as const;
const failures = [
  { message: 'connect ECONNRESET 10.0.3.17:443', category: 'network', code: 'ECONNRESET' },
  { message: 'request timed out after 30000 ms', category: 'timeout', code: 'ETIMEDOUT' },
  { message: 'no text layer on page 3', category: 'extraction', code: 'NO_TEXT' },
  { message: 'unsupported encoding windows-1258', category: 'not_applicable', code: 'ENCODING' },
] as const;

/** Start of the producer clock; events advance it by their item durations. */
const epoch = Date.UTC(2026, 0, 1);

/**
 * One job's history of exactly `eventCount` events (at least 2): job.started, three
 * stages, item.started / item.completed pairs with ~3% item.failed, a progress report
 * every 100 events, a checkpoint every 250, and job.completed last. Event data averages
 * ~120 bytes of JSON (item results 150–170, item starts ~90), like a document pipeline's.
 */
export function* jobHistory(jobId: string, eventCount: number): Generator<EventInput> {
  const random = seededRandom(hashString(jobId));
  const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)]!;
  let clock = epoch + (hashString(`${jobId}:start`) % 86_400) * 1000;
  const at = (): Date => new Date(clock);
  const envelope = () => ({ eventId: uuidFrom(random), occurredAt: at() });
  // About two events per item, less the job, stage, progress and checkpoint events.
  const items = Math.max(1, Math.ceil(((eventCount - 5) * 0.986) / 2) + 2);
  const perStage = Math.ceil(items / stages.length);

  yield {
    type: 'job.started',
    data: {
      name: `nightly ingest ${jobId}`,
      kind: 'ingest',
      project: 'documents',
      total: items,
      unit: 'documents',
      stages: stages.map((name, index) => ({ name, weight: index === 1 ? 2 : 1 })),
    },
    ...envelope(),
  };
  let emitted = 1;
  let item = 0;
  let stage = -1;
  let open: { itemId: string; type: string; durationMs: number } | null = null;
  let processed = 0;
  let nextCheckpoint = 250;
  let nextProgress = 100;
  // Stop one short of the end: job.completed takes the last slot.
  while (emitted < eventCount - 1) {
    if (open === null && stage < stages.length - 1 && item >= (stage + 1) * perStage) {
      stage += 1;
      yield {
        type: 'stage.started',
        data: { stage: stages[stage]!, total: perStage },
        ...envelope(),
      };
    } else if (open === null && emitted >= nextCheckpoint) {
      nextCheckpoint += 250;
      yield {
        type: 'checkpoint.saved',
        data: { cursor: { lastItem: item, stage: stages[stage]! }, note: 'periodic' },
        ...envelope(),
      };
    } else if (open === null && emitted >= nextProgress) {
      nextProgress += 100;
      yield {
        type: 'progress.reported',
        data: { processed, message: `processed ${processed} of ${items} documents` },
        ...envelope(),
      };
    } else if (open === null) {
      item += 1;
      const itemId = `${jobId}/doc-${String(item).padStart(6, '0')}`;
      open = { itemId, type: pick(itemTypes), durationMs: 20 + Math.floor(random() * 900) };
      yield {
        type: 'item.started',
        data: {
          itemId,
          attempt: 1,
          worker: `ingest-worker-${Math.floor(random() * 16)}`,
          leaseMs: 60_000,
        },
        ...envelope(),
      };
    } else {
      const { itemId, type, durationMs } = open;
      clock += durationMs;
      open = null;
      processed += 1;
      if (random() < 0.03) {
        yield {
          type: 'item.failed',
          data: { itemId, type, durationMs, error: { ...pick(failures) } },
          ...envelope(),
        };
      } else {
        yield {
          type: 'item.completed',
          data: {
            itemId,
            type,
            durationMs,
            output: `s3://bucket/${jobId}/doc-${String(item).padStart(6, '0')}.json`,
            metrics: {
              bytes: 2_000 + Math.floor(random() * 2_000_000),
              pages: 1 + Math.floor(random() * 60),
            },
          },
          ...envelope(),
        };
      }
    }
    emitted += 1;
  }
  yield {
    type: 'job.completed',
    data: { result: { processed, output: `s3://bucket/${jobId}/` } },
    ...envelope(),
  };
}

/** A job's whole history as an array. */
export function jobEvents(jobId: string, eventCount: number): EventInput[] {
  return [...jobHistory(jobId, eventCount)];
}

/** An `events` row as the raw baselines insert it: the same JSON text the ledger stores. */
export interface RawRow {
  streamId: string;
  version: number;
  eventId: string;
  type: string;
  schemaVersion: number;
  data: string;
  metadata: string;
  occurredAt: string;
}

/** The raw rows of a job's events, numbered from `firstVersion`. */
export function toRawRows(
  streamId: string,
  events: readonly EventInput[],
  firstVersion = 1,
): RawRow[] {
  return events.map((event, index) => ({
    streamId,
    version: firstVersion + index,
    eventId: event.eventId!,
    type: event.type,
    schemaVersion: 1,
    data: JSON.stringify(event.data),
    metadata: JSON.stringify(event.metadata ?? {}),
    occurredAt: new Date(event.occurredAt!).toISOString(),
  }));
}

/** Ids of `count` jobs named `<prefix>-0001` and so on. */
export function jobIds(prefix: string, count: number): string[] {
  return Array.from(
    { length: count },
    (_, index) => `${prefix}-${String(index + 1).padStart(4, '0')}`,
  );
}
