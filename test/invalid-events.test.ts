import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventInput } from '../schema/events.ts';
import { limits } from '../schema/limits.ts';
import { HeadwayError } from '../src/errors.ts';
import type { Ledger } from '../src/ledger.ts';
import { openLedger } from '../src/open-ledger.ts';
import { prepareEvents, quickChecks, zodChecks } from '../src/append/prepare-events.ts';
import type { EventChecks } from '../src/append/prepare-events.ts';
import { jobFacts } from './arbitraries.ts';

const valid = { type: 'item.completed' as const, data: { itemId: 'a', durationMs: 5 } };

class ItemThatSerialisesAsSomethingElse {
  itemId = 'a';
  toJSON() {
    return { note: 'not an item' };
  }
}

/** An invalid event and the path its error must name. */
const invalidEvent: fc.Arbitrary<{ event: unknown; path: RegExp; code: string }> = fc.oneof(
  fc.constantFrom('job.begun', 'item', 'X.custom', '').map((type) => ({
    event: { ...valid, type },
    path: /^events\[0\]\.type/,
    code: 'invalid_event',
  })),
  fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.constant('')).map((itemId) => ({
    event: { ...valid, data: { itemId } },
    path: /^events\[0\]\.data\.itemId/,
    code: 'invalid_event',
  })),
  fc.oneof(fc.constant(-1), fc.constant(Number.NaN), fc.string()).map((durationMs) => ({
    event: { ...valid, data: { itemId: 'a', durationMs } },
    path: /^events\[0\]\.data(\.durationMs)?/,
    code: 'invalid_event',
  })),
  fc
    .string({ minLength: 1, maxLength: 10 })
    .filter((key) => !['itemId', 'type', 'durationMs', 'output', 'metrics'].includes(key))
    .map((key) => ({
      event: { ...valid, data: { itemId: 'a', [key]: 1 } },
      path: /^events\[0\]\.data/,
      code: 'invalid_event',
    })),
  fc.integer({ min: limits.idLength + 1, max: limits.idLength + 50 }).map((length) => ({
    event: { ...valid, data: { itemId: 'x'.repeat(length) } },
    path: /^events\[0\]\.data\.itemId/,
    code: 'invalid_event',
  })),
  fc.constant({
    event: { type: 'items.planned', data: { items: [] } },
    path: /^events\[0\]\.data\.items/,
    code: 'invalid_event',
  }),
  fc.constant({
    event: {
      type: 'items.planned',
      data: {
        items: Array.from({ length: limits.itemsPerEvent + 1 }, (_, index) => ({
          id: `i${index}`,
        })),
      },
    },
    path: /^events\[0\]\.data\.items/,
    code: 'invalid_event',
  }),
  fc.constant({
    event: { type: 'log.written', data: { level: 'info', message: 'nul \u0000 here' } },
    path: /^events\[0\]\.data/,
    code: 'invalid_event',
  }),
  ...['x\ud800', '\udc00y', 'a\udbff\udbffb'].map((itemId) =>
    fc.constant({
      event: { ...valid, data: { itemId } },
      path: /^events\[0\]\.data: expected well-formed Unicode text/,
      code: 'invalid_event',
    }),
  ),
  ...[
    new Date(-8.64e15),
    new Date('0000-12-31T23:59:59Z'),
    new Date('+010000-01-01T00:00:00Z'),
  ].map((occurredAt) =>
    fc.constant({
      event: { ...valid, occurredAt },
      path: /^events\[0\]\.occurredAt: expected a time from 0001-01-01 to 9999-12-31/,
      code: 'invalid_event',
    }),
  ),
  fc.constant({
    // Passes a schema as an object, and would be stored as what toJSON says.
    event: { ...valid, data: new ItemThatSerialisesAsSomethingElse() },
    path: /^events\[0\]\.data/,
    code: 'invalid_event',
  }),
  fc.constant({
    event: { type: 'x.custom', data: () => 1 },
    path: /^events\[0\]\.data: expected JSON, received function/,
    code: 'invalid_event',
  }),
  fc.constant({
    event: { type: 'item.completed', data: Symbol('x') },
    path: /^events\[0\]\.data: expected JSON, received symbol/,
    code: 'invalid_event',
  }),
  fc.constant({
    event: { ...valid, eventId: 'not-a-uuid' },
    path: /^events\[0\]\.eventId/,
    code: 'invalid_event',
  }),
  fc.constant({
    event: { ...valid, occurredAt: 'yesterday' },
    path: /^events\[0\]\.occurredAt/,
    code: 'invalid_event',
  }),
  fc.constant({
    event: { ...valid, metadata: { actor: 7 } },
    path: /^events\[0\]\.metadata\.actor/,
    code: 'invalid_event',
  }),
  fc.constant({
    event: { type: 'x.blob', data: { text: 'y'.repeat(limits.eventBytes) } },
    path: /^events\[0\]/,
    code: 'event_too_large',
  }),
);

describe('invalid events', () => {
  let ledger: Ledger;
  beforeAll(async () => {
    ledger = await openLedger({ dataDir: 'memory://' });
    await ledger.append('job', [
      { type: 'job.started', data: { name: 'n', kind: 'k', project: 'p' } },
    ]);
  });
  afterAll(() => ledger.close());

  it('are rejected with a code naming the path, and the log is unchanged', async () => {
    const before = await ledger.readAll();
    await fc.assert(
      fc.asyncProperty(invalidEvent, fc.nat(3), async ({ event, path, code }, validBefore) => {
        // Valid events around the bad one must not be written either.
        const batch = [...Array.from({ length: validBefore }, () => valid), event];
        const error = await ledger.append('job', batch as never).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(HeadwayError);
        expect((error as HeadwayError).code).toBe(code);
        const message = (error as Error).message.replace(`events[${validBefore}]`, 'events[0]');
        expect(message).toMatch(path);
      }),
      { numRuns: 150 },
    );
    expect(await ledger.readAll()).toEqual(before);
  });

  it('explain what was expected and what was received', async () => {
    const messages = [];
    for (const event of [
      { type: 'job.begun', data: {} },
      { type: 'item.completed', data: { itemId: 42 } },
      { type: 'job.started', data: { name: 'n', kind: 'k' } },
    ]) {
      messages.push(
        await ledger.append('job', [event] as never).catch((error: Error) => error.message),
      );
    }
    messages.push(await ledger.append('', [valid] as never).catch((error: Error) => error.message));
    messages.push(
      await ledger
        .append('job', [valid], { expectedVersion: -2 })
        .catch((error: Error) => error.message),
    );
    expect(messages).toMatchInlineSnapshot(`
      [
        "events[0].type: expected a catalogued type (job.started, job.scope_changed, items.planned, stage.started, item.started, item.completed, item.failed, item.skipped, items.released, progress.reported, checkpoint.saved, log.written, job.paused, job.resumed, job.completed, job.failed, job.cancelled, condition.raised, condition.cleared) or x.<name>, received "job.begun"",
        "events[0].data.itemId: Invalid input: expected string, received number",
        "events[0].data.project: Invalid input: expected string, received undefined",
        "streamId: Too small: expected string to have >=1 characters",
        "expectedVersion: expected 'any', 'no_stream', 'stream_exists' or a version number >= 0, received -2",
      ]
    `);
  });
});

/** Nested arrays or objects `depth` deep, around the quick JSON check's depth limit. */
function nested(depth: number, inArray: boolean): unknown {
  let value: unknown = 'leaf';
  for (let level = 0; level < depth; level++) value = inArray ? [value] : { a: value };
  return value;
}

class ItemLike {
  itemId = 'a';
  toJSON() {
    return { itemId: 'b' };
  }
}

/** Values that sit on or just past a bound, or that only look like JSON. */
const oddValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc
    .constantFrom(0, 1, 2, 199, 200, 201, 499, 500, 501, 3_999, 4_000, 4_001)
    .map((length) => 'x'.repeat(length)),
  fc.constantFrom('', 'nul \u0000', 'lone \ud800', 'é'.repeat(201), 'ok', '\\u0000'),
  // Around the byte cap, in one-, two- and three-byte characters.
  fc.constantFrom('x'.repeat(65_500), 'é'.repeat(32_770), '€'.repeat(21_830), '€'.repeat(21_850)),
  fc.constantFrom(
    ...[Number.NaN, Infinity, -Infinity, -0, 0, 0.5, -1, 1, 100, 100.5, 101],
    ...[1e6, 1e6 + 1, 1e12, 1e12 + 1, -1e12, -1e12 - 1, 7 * 24 * 3600 * 1000 + 1],
    ...[Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, 1e300],
  ),
  fc.double(),
  fc.constantFrom(undefined, null, true, 10n, Symbol('s'), () => 1, new Date(0), new Map()),
  fc.constantFrom(new Date(Number.NaN), new Array<number>(3).fill(1, 1), new ItemLike(), [], {}),
  fc.constantFrom(
    Object.assign(Object.create(null) as object, { itemId: 'a', n: 1 }),
    Object.assign(Object.create({ inherited: 1 }) as object, { itemId: 'a' }),
    JSON.parse('{"__proto__": {"x": 1}, "itemId": "a"}') as unknown,
    { itemId: 'a', [Symbol('k')]: 1 },
    Object.defineProperty({ itemId: 'a' }, 'hidden', { value: 1n, enumerable: false }),
    {
      get itemId() {
        return 'a';
      },
    },
  ),
  fc.integer({ min: 60, max: 70 }).chain((depth) => fc.boolean().map((a) => nested(depth, a))),
  fc
    .integer({ min: 0, max: 102 })
    .map((size) => Object.fromEntries(Array.from({ length: size }, (_, i) => [`k${i}`, i]))),
  fc.dictionary(fc.constantFrom('', 'a', 'x'.repeat(201), 'constructor', '__proto__'), fc.nat(), {
    maxKeys: 3,
  }),
);

/** Every key some event data or envelope has, and a few that none has. */
const someKey = fc.constantFrom(
  ...['name', 'kind', 'project', 'dataset', 'total', 'unit', 'stages', 'config', 'labels'],
  ...['parentJobId', 'items', 'stage', 'itemId', 'attempt', 'worker', 'leaseMs', 'type'],
  ...['durationMs', 'output', 'metrics', 'error', 'reason', 'itemIds', 'processed'],
  ...['percent', 'message', 'counts', 'current', 'cursor', 'note', 'level', 'context'],
  ...['result', 'category', 'code', 'retryable', 'stack', 'file', 'id', 'group', 'weight'],
  ...['extra', 'constructor', 'toString', ''],
);

/** Sets `value` at a path chosen by `picks` inside a copy of `target` (a new key at the end). */
function setSomewhere(target: unknown, picks: number[], key: string, value: unknown): unknown {
  if (typeof target !== 'object' || target === null) return { [key]: value };
  const copy = (Array.isArray(target) ? [...target] : { ...target }) as Record<string, unknown>;
  const keys = Object.keys(copy);
  const [pick, ...rest] = picks;
  if (pick === undefined || keys.length === 0 || pick % (keys.length + 1) === keys.length) {
    copy[key] = value;
  } else {
    const inner = keys[pick % (keys.length + 1)]!;
    copy[inner] = setSomewhere(copy[inner], rest, key, value);
  }
  return copy;
}

const fullEvents: unknown[] = [
  {
    type: 'job.started',
    data: {
      ...{ name: 'n', kind: 'k', project: 'p', dataset: 'd', total: 3, unit: 'docs' },
      ...{ stages: [{ name: 'a', weight: 2 }], config: { deep: [1, { x: null }] } },
      ...{ labels: { team: 'x' }, parentJobId: 'parent' },
    },
  },
  {
    type: 'item.completed',
    eventId: '8F0E9C2A-6B1D-4C3E-9A7B-1D2E3F4A5B6C',
    occurredAt: new Date(0),
    metadata: { correlationId: 'c', causationId: 'k', actor: 'a', source: 's' },
    schemaVersion: 1,
    data: {
      ...{ itemId: 'doc-000123', type: 'pdf', durationMs: 123 },
      ...{ output: 's3://bucket/job-7/doc-000123.json', metrics: { bytes: 12345, pages: 3 } },
    },
  },
  {
    type: 'item.failed',
    occurredAt: '2026-01-01T00:00:00+02:00',
    data: {
      ...{ itemId: 'i', type: 't', durationMs: 1 },
      error: { message: 'm', code: 'E', retryable: true, stack: ['a', 'b'], stage: 's', file: 'f' },
    },
  },
  { type: 'progress.reported', data: { percent: 50, counts: { ok: -3 }, current: 'c' } },
  { type: 'log.written', data: { level: 'warn', message: 'm', context: { n: [1, 'two'] } } },
  { type: 'job.completed', data: { result: [{ a: 1 }, 'b', null, true] } },
  { type: 'x.custom', schemaVersion: 3, data: { any: { json: [1.5, -2] } } },
];

/** A value set at a path inside the data (`picks` choose the path). */
const dataChange = fc.record({ picks: fc.array(fc.nat()), key: someKey, value: oddValue });

/** A value set on the envelope. */
const envelopeChange = fc.record({
  field: fc.constantFrom('eventId', 'occurredAt', 'metadata', 'schemaVersion', 'type', 'data'),
  value: fc.oneof(
    oddValue,
    fc.constantFrom(
      ...['00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff'],
      ...['8f0e9c2a-6b1d-9c3e-9a7b-1d2e3f4a5b6c', '8f0e9c2a-6b1d-4c3e-ca7b-1d2e3f4a5b6c'],
      ...['2026-01-01T00:00:00Z', '2026-01-01T00:00:00', '2026-13-01T00:00:00Z'],
      ...['x.custom', 'x.', 'job.begun', 'item.completed', 'x.' + 'y'.repeat(100)],
      { actor: 'a', source: 's'.repeat(201) },
      { correlationId: '' },
      { actor: 'a', other: 1 },
    ),
  ),
});

/** A valid event, or one with a value set somewhere in its data or its envelope. */
const eventInput: fc.Arbitrary<unknown> = fc
  .tuple(
    fc.oneof(
      fc.constantFrom(...fullEvents),
      jobFacts.chain((facts) => fc.constantFrom(...facts)),
    ),
    fc.oneof(
      { weight: 2, arbitrary: fc.constant(null) },
      { weight: 4, arbitrary: dataChange },
      { weight: 2, arbitrary: envelopeChange },
    ),
  )
  .map(([event, change]) => {
    if (change === null) return event;
    if ('field' in change) return { ...(event as object), [change.field]: change.value };
    const { picks, key, value } = change;
    return {
      ...(event as object),
      data: setSomewhere((event as EventInput).data, picks, key, value),
    };
  });

/** What `prepareEvents` made of a batch: its events (generated ids masked) or its error. */
function outcome(batch: unknown[], checks: EventChecks): unknown {
  try {
    return prepareEvents(batch, 'events', new Date(0), checks).map((event, index) =>
      (batch[index] as { eventId?: unknown }).eventId === undefined
        ? { ...event, eventId: 'generated' }
        : event,
    );
  } catch (error) {
    return error instanceof HeadwayError
      ? { message: error.message, fields: { ...error } }
      : { thrown: String(error) };
  }
}

describe('the compiled fast path', () => {
  it('accepts, rejects and reports exactly as zod alone does', () => {
    fc.assert(
      fc.property(fc.array(eventInput, { minLength: 1, maxLength: 4 }), (batch) => {
        expect(outcome(batch, quickChecks)).toStrictEqual(outcome(batch, zodChecks));
      }),
      { numRuns: 2_000 },
    );
  });

  it('counts bytes, not characters, at the size cap', () => {
    // data `"<text>"` and metadata `{}`: 4 bytes besides the text.
    for (const [char, bytes] of [
      ['y', 1],
      ['é', 2],
      ['€', 3],
      ['😀', 4],
    ] as const) {
      const fits = Math.floor((limits.eventBytes - 4) / bytes);
      const event = (count: number) => [{ type: 'x.blob', data: char.repeat(count) }];
      expect(prepareEvents(event(fits), 'events', new Date(0))).toHaveLength(1);
      expect(() => prepareEvents(event(fits + 1), 'events', new Date(0))).toThrow(
        `events[0]: expected at most ${limits.eventBytes} bytes of JSON, received ${4 + (fits + 1) * bytes} bytes`,
      );
    }
  });
});
