import fc from 'fast-check';
import { conditionNames } from '../schema/events.ts';
import type { EventData, EventInput, EventType } from '../schema/events.ts';
import type { RecordedEvent } from '../schema/recorded-event.ts';

/** A catalogued event input of one type. */
const fact = <T extends EventType>(type: T, data: EventData<T>) => ({ type, data }) as EventInput;

/** A small pool of item ids, so that starts, results, retries and releases meet. */
// Ids that are also Object.prototype's names must behave like any other.
const itemId = fc.oneof(
  { weight: 10, arbitrary: fc.integer({ min: 0, max: 11 }).map((index) => `item-${index}`) },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString') },
);
const itemType = fc.constantFrom('html', 'pdf', '__proto__');
const stageName = fc.constantFrom('fetch', 'extract', 'index');
/** The stage an item event names, if any: declared ones, one no job declares, or none. */
const namedStage = fc.option(fc.constantFrom('fetch', 'extract', 'index', 'embed'), {
  nil: undefined,
  freq: 2,
});
const failure = fc.record(
  {
    message: fc.constantFrom(
      'read ECONNRESET',
      'connect ETIMEDOUT 10.0.0.1:443',
      'Unexpected token < in JSON at position 12',
      'ENOSPC: no space left on device',
      'HTTP 503 on https://example.org/a/17',
    ),
    category: fc.constantFrom('network', 'timeout', 'extraction', 'output', 'not_applicable'),
    retryable: fc.boolean(),
    stage: stageName,
    details: fc.constantFrom({ status: 503 }, ['a', { b: null }], 'body'),
  },
  { requiredKeys: ['message'] },
);

/** One producer fact about a job other than its start. */
const jobFact: fc.Arbitrary<EventInput> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc
      .array(fc.record({ id: itemId, type: itemType }), { minLength: 1, maxLength: 6 })
      .map((items) => fact('items.planned', { items })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record(
        { stage: stageName, total: fc.option(fc.nat(20), { nil: undefined }) },
        { requiredKeys: ['stage'] },
      )
      .map((data) => fact('stage.started', data)),
  },
  {
    weight: 4,
    arbitrary: fc
      .record(
        {
          itemId,
          stage: namedStage,
          leaseMs: fc.option(fc.integer({ min: 1, max: 60_000 }), { nil: undefined }),
        },
        { requiredKeys: ['itemId'] },
      )
      .map((data) => fact('item.started', data)),
  },
  {
    weight: 4,
    arbitrary: fc
      .record(
        {
          itemId,
          stage: namedStage,
          type: itemType,
          durationMs: fc.integer({ min: 0, max: 5_000 }),
        },
        { requiredKeys: ['itemId', 'type', 'durationMs'] },
      )
      .map((data) => fact('item.completed', data)),
  },
  {
    weight: 2,
    arbitrary: fc
      .record(
        {
          itemId,
          stage: namedStage,
          durationMs: fc.integer({ min: 0, max: 5_000 }),
          error: failure,
        },
        { requiredKeys: ['itemId', 'durationMs', 'error'] },
      )
      .map((data) => fact('item.failed', data)),
  },
  {
    weight: 1,
    arbitrary: fc
      .record(
        { itemId, stage: namedStage, reason: fc.constant('not needed') },
        { requiredKeys: ['itemId', 'reason'] },
      )
      .map((data) => fact('item.skipped', data)),
  },
  {
    weight: 1,
    arbitrary: fc
      .array(itemId, { minLength: 1, maxLength: 4 })
      .map((itemIds) => fact('items.released', { itemIds, reason: 'lease expired' })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({ processed: fc.nat(30), message: fc.constant('working') }, { requiredKeys: [] })
      .map((data) => fact('progress.reported', data)),
  },
  {
    weight: 1,
    arbitrary: fc.nat(30).map((total) => fact('job.scope_changed', { total })),
  },
  {
    weight: 1,
    arbitrary: fc.nat(1_000).map((offset) => fact('checkpoint.saved', { cursor: { offset } })),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('debug', 'info', 'warn', 'error')
      .map((level) => fact('log.written', { level, message: `a ${level} line` })),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom<EventInput>(
      { type: 'job.paused', data: {} },
      { type: 'job.resumed', data: {} },
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constant<EventInput>({ type: 'x.custom', data: { anything: [1, 2] } }),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.boolean(), fc.constantFrom(...conditionNames))
      .map(([raised, condition]) =>
        raised
          ? fact('condition.raised', { condition, silentMs: 60_000 })
          : fact('condition.cleared', { condition, heldMs: 1_000 }),
      ),
  },
);

const jobStart = fc
  .record(
    {
      total: fc.nat(20),
      stages: fc.constantFrom<{ name: string; weight?: number }[]>(
        [{ name: 'fetch' }, { name: 'extract', weight: 3 }, { name: 'index' }],
        [{ name: 'fetch', weight: 2 }],
      ),
    },
    { requiredKeys: [] },
  )
  .map((extra) => fact('job.started', { name: 'job', kind: 'crawl', project: 'web', ...extra }));

const terminal = fc.constantFrom<EventInput>(
  { type: 'job.completed', data: {} },
  { type: 'job.failed', data: { error: { message: 'gave up', category: 'unknown' } } },
  { type: 'job.cancelled', data: { reason: 'operator' } },
);

/** Producer facts of one job: a start, facts, maybe an end. */
export const jobFacts: fc.Arbitrary<EventInput[]> = fc
  .tuple(jobStart, fc.array(jobFact, { maxLength: 60 }), fc.option(terminal, { nil: undefined }))
  .map(([start, facts, end]) => [start, ...facts, ...(end ? [end] : [])]);

/** Turns producer facts of several streams into recorded events, in the given order. */
export function record(
  facts: readonly { streamId: string; event: EventInput }[],
  gapsMs: readonly number[] = [],
): RecordedEvent[] {
  const versions = new Map<string, number>();
  let clock = Date.UTC(2026, 10, 1);
  return facts.map(({ streamId, event }, index) => {
    const version = (versions.get(streamId) ?? 0) + 1;
    versions.set(streamId, version);
    clock += gapsMs[index % Math.max(1, gapsMs.length)] ?? 250;
    return {
      position: BigInt(index + 1),
      transactionId: BigInt(1_000 + index),
      streamId,
      version,
      eventId: `00000000-0000-4000-8000-${String(index).padStart(12, '0')}`,
      type: event.type,
      schemaVersion: 1,
      data: event.data,
      metadata: {},
      occurredAt: new Date(clock),
      recordedAt: new Date(clock + 5),
    } as RecordedEvent;
  });
}

/** One job's recorded history, with varied gaps between events. */
export const jobHistory: fc.Arbitrary<RecordedEvent[]> = fc
  .tuple(jobFacts, fc.array(fc.integer({ min: 0, max: 3_000 }), { minLength: 1, maxLength: 10 }))
  .map(([facts, gaps]) =>
    record(
      facts.map((event) => ({ streamId: 'job-1', event })),
      gaps,
    ),
  );

/** Several jobs' histories interleaved, as the global log holds them. */
export const multiJobLog: fc.Arbitrary<RecordedEvent[]> = fc
  .tuple(fc.array(jobFacts, { minLength: 1, maxLength: 4 }), fc.infiniteStream(fc.nat(3)))
  .map(([jobs, picks]) => {
    const queues = jobs.map((facts, index) =>
      facts.map((event) => ({ streamId: `job-${index}`, event })),
    );
    const merged: { streamId: string; event: EventInput }[] = [];
    const iterator = picks[Symbol.iterator]();
    while (queues.some((queue) => queue.length > 0)) {
      const open = queues.filter((queue) => queue.length > 0);
      const queue = open[(iterator.next().value as number) % open.length]!;
      merged.push(queue.shift()!);
    }
    return record(merged);
  });

/** A history plus a cut point inside it. */
export const historyWithCut = jobHistory.chain((events) =>
  fc.tuple(fc.constant(events), fc.integer({ min: 0, max: events.length })),
);

/** Freezes a value and everything inside it, so any mutation throws. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}
