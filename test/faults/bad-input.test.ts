import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonValue } from '../../schema/events.ts';
import { limits } from '../../schema/limits.ts';
import { parseLogCursor } from '../../src/cursors.ts';
import { InvalidEventError, InvalidInputError } from '../../src/errors.ts';
import type { Ledger } from '../../src/ledger.ts';
import { parseTokens } from '../../src/server/auth.ts';
import { createServer } from '../../src/server/server.ts';
import { openLedger } from '../../src/open-ledger.ts';
import { prepareEvents } from '../../src/append/prepare-events.ts';
import { storesUnderTest } from '../stores.ts';

/**
 * Generated bad input over real HTTP: malformed bodies, headers, paths, query strings and
 * methods, sent to a real server over a real ledger. None may get a 5xx (the database is
 * up, so a 503 is a failure too), and none may change the log. A failure names the
 * request that caused it; fast-check prints the seed and path that replay its batch
 * (BAD_INPUT_SEED and BAD_INPUT_PATH replay one).
 */

const appendToken = 'append-token-0123456789';
const readToken = 'read-token-0123456789ab';
const adminToken = 'admin-token-0123456789a';

/** Requests sent at once; every run of the property sends one such batch. */
const batchSize = 32;
/** How long one request may go unanswered before it counts as a failure. */
const answerWithinMs = 15_000;

// ---------------------------------------------------------------------------------------
// The seeded jobs: routes with valid ids are hit too. Nothing generated may change them.

const seeded = {
  running: 'seed-running',
  done: 'seed-done',
  child: 'seed-child',
  odd: 'seed odd/ü:1',
} as const;
/** Event ids the seeds were written with, for generated requests that reuse them. */
const seededEventIds = [
  '00000000-0000-4000-8000-00000000a001',
  '00000000-0000-4000-8000-00000000a002',
  '00000000-0000-4000-8000-00000000a003',
];
/** Jobs a resume would change: only ever sent resume bodies that are refused. */
const resumable: string[] = [seeded.running, seeded.child, seeded.odd];

async function seed(ledger: Ledger): Promise<Map<string, number>> {
  const at = '2026-11-23T10:00:00Z';
  await ledger.append(
    seeded.running,
    [
      {
        type: 'job.started',
        data: {
          name: 'crawl',
          kind: 'crawl',
          project: 'web',
          total: 4,
          stages: [{ name: 'fetch' }, { name: 'parse', weight: 2 }],
        },
        eventId: seededEventIds[0]!,
        occurredAt: at,
      },
      { type: 'stage.started', data: { stage: 'fetch' }, occurredAt: at },
      { type: 'items.planned', data: { items: [{ id: 'a' }, { id: 'b' }, { id: 'c' }] } },
      { type: 'item.started', data: { itemId: 'a', leaseMs: 1 }, occurredAt: at },
      { type: 'item.completed', data: { itemId: 'a', durationMs: 40, metrics: { bytes: 10 } } },
      { type: 'item.started', data: { itemId: 'b' }, occurredAt: at },
      {
        type: 'item.failed',
        data: { itemId: 'b', error: { message: 'HTTP 503', category: 'network' } },
      },
      { type: 'item.started', data: { itemId: 'c' }, occurredAt: at },
      { type: 'log.written', data: { level: 'warn', message: 'slow origin' } },
      { type: 'checkpoint.saved', data: { cursor: { page: 2 }, note: 'page 2' } },
      { type: 'progress.reported', data: { processed: 2, message: 'halfway' } },
      { type: 'x.custom', data: { anything: [1, 'two'] }, eventId: seededEventIds[1]! },
    ],
    { expectedVersion: 'no_stream' },
  );
  await ledger.append(
    seeded.done,
    [
      { type: 'job.started', data: { name: 'index', kind: 'index', project: 'web' } },
      { type: 'job.completed', data: { result: { documents: 3 } } },
    ],
    { expectedVersion: 'no_stream' },
  );
  await ledger.append(
    seeded.child,
    [
      {
        type: 'job.started',
        data: { name: 'part', kind: 'crawl', project: 'web', parentJobId: seeded.running },
        eventId: seededEventIds[2]!,
      },
    ],
    { expectedVersion: 'no_stream' },
  );
  await ledger.append(
    seeded.odd,
    [
      { type: 'job.started', data: { name: 'odd', kind: 'k', project: 'odd project/ü' } },
      { type: 'job.paused', data: { reason: 'weekend' } },
    ],
    { expectedVersion: 'no_stream' },
  );
  const versions = new Map<string, number>();
  for (const jobId of Object.values(seeded)) {
    versions.set(jobId, await ledger.streamVersion(jobId));
  }
  return versions;
}

/** The log as rows: count, last position, and a hash of every row of events and streams. */
async function snapshotOf(ledger: Ledger) {
  const events = await sql<{ count: string; last: string | null; hash: string | null }>`
    select count(*)::text as count, max(position)::text as last,
      md5(string_agg(e::text, '|' order by position)) as hash
    from events e`.execute(ledger.db);
  const streams = await sql<{ count: string; hash: string | null }>`
    select count(*)::text as count, md5(string_agg(s::text, '|' order by stream_id)) as hash
    from streams s`.execute(ledger.db);
  return { events: events.rows[0], streams: streams.rows[0] };
}

/** Events past a position, briefly: what a request that should have been refused wrote. */
async function eventsAfter(ledger: Ledger, position: string): Promise<string> {
  const rows = await sql<{ row: string }>`
    select concat_ws(' ', position, stream_id, version, type, left(data::text, 200)) as row
    from events where position > ${position}::bigint order by position limit 20`.execute(ledger.db);
  return rows.rows.map((row) => row.row).join(' | ');
}

// ---------------------------------------------------------------------------------------
// What is sent.

/** One generated request. */
interface Probe {
  /** The builder that made it. */
  kind: string;
  /** The server with tokens, or the open one (loopback only, no tokens). */
  server: 'secured' | 'open';
  method: string;
  /** The request target exactly as it goes on the request line. */
  target: string;
  headers: Record<string, string>;
  body?: string;
  /**
   * Bytes sent as they are over a plain socket, for what node:http refuses to send
   * (bad Content-Length, odd methods, raw bytes in the path); `{host}` is filled in.
   */
  raw?: string;
  /** A raw request the server may leave unanswered (a body shorter than its length). */
  mayGoUnanswered?: boolean;
}

/** How a probe prints in a failure: everything needed to send it again. */
function describeProbe(probe: Probe): string {
  const text = (value: string) =>
    value.length <= 400
      ? JSON.stringify(value)
      : `${JSON.stringify(value.slice(0, 300))}… (${value.length} characters, sha256 ${createHash('sha256').update(value).digest('hex').slice(0, 16)})`;
  if (probe.raw !== undefined) return `[${probe.kind}] ${probe.server} raw ${text(probe.raw)}`;
  const headers = `{${Object.entries(probe.headers)
    .map(([key, value]) => `${key}: ${text(value)}`)
    .join(', ')}}`;
  const body = probe.body === undefined ? '' : ` body ${text(probe.body)}`;
  return `[${probe.kind}] ${probe.server} ${probe.method} ${text(probe.target)} headers ${headers}${body}`;
}

/** A probe that fast-check prints with `describeProbe`, not as a huge object. */
function probe(fields: Probe): Probe {
  return Object.defineProperty(fields, fc.toStringMethod, {
    value: () => describeProbe(fields),
    enumerable: false,
  });
}

// ---------------------------------------------------------------------------------------
// Values: valid ones, and ones that are invalid for certain.

/** In JSON text, these strings become numbers JSON.stringify cannot write. */
const infinity = '\u0001INFINITY\u0001';
const negativeInfinity = '\u0001-INFINITY\u0001';
function toJsonText(value: unknown): string {
  const text = JSON.stringify(value) ?? 'undefined';
  if (!text.includes('\\u0001')) return text;
  return text
    .replaceAll(JSON.stringify(infinity), '1e400')
    .replaceAll(JSON.stringify(negativeInfinity), '-1e400');
}

const nul = 'a\u0000b';
const loneHigh = 'x\ud800';
const loneLow = '\udfffy';
/** Strings no store can keep: every string field refuses them. */
const unstorable = fc.constantFrom(nul, loneHigh, loneLow, '\u0000');
const notAString = fc.constantFrom<unknown>(1, 0, true, false, null, [], {}, ['a'], { a: 1 });
/** True for `{}`. */
const isEmptyObject = (value: unknown) =>
  typeof value === 'object' &&
  value !== null &&
  !Array.isArray(value) &&
  Object.keys(value).length === 0;
const notANumber = fc.constantFrom<unknown>('1', '', null, true, [], {}, [1], infinity);

/** A string longer than `max`, or empty when at least one character is required. */
function badString(max: number, min: number) {
  return fc.oneof(
    notAString,
    unstorable,
    fc.integer({ min: max + 1, max: max + 64 }).map((length) => 'x'.repeat(length)),
    ...(min > 0 ? [fc.constant('')] : []),
  );
}

/**
 * Nesting deeper than any JSON field takes, as arrays or objects; deep enough to overflow
 * a recursive validator, shallow enough for JSON.stringify here (deeper text is sent raw).
 */
const deepJson = fc
  .tuple(fc.integer({ min: limits.jsonDepth + 1, max: 3_000 }), fc.boolean())
  .map(([depth, arrays]) => {
    let value: unknown = 'bottom';
    for (let level = 0; level < depth; level++) value = arrays ? [value] : { d: value };
    return value;
  });

/** A JSON value that is valid anywhere JSON is. */
const validJson = fc.constantFrom<unknown>(
  { page: 3 },
  [1, 'two', { three: null }],
  'last-id',
  42,
  null,
  { nested: { deeper: ['ok'] } },
);
/**
 * JSON that no JSON field takes: unstorable text, too deep, too large. (An infinite number
 * inside an object is stored as null, as JSON.stringify writes it, so it is no sure break.)
 */
const badJson = fc.oneof(
  unstorable,
  unstorable.map((text) => ({ note: text })),
  unstorable.map((text) => ({ [text]: 1 })),
  deepJson,
  fc.integer({ min: limits.eventBytes, max: limits.eventBytes + 4_096 }).map((n) => 'j'.repeat(n)),
);

const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const badEventId = fc.oneof(
  notAString,
  unstorable,
  fc.constantFrom(
    '',
    'not-a-uuid',
    '{00000000-0000-4000-8000-000000000001}',
    '00000000-0000-4000-8000-00000000001',
    '00000000-0000-4000-8000-0000000000001',
    'zzzzzzzz-zzzz-4zzz-8zzz-zzzzzzzzzzzz',
    '00000000000040008000000000000001',
    ' 00000000-0000-4000-8000-000000000001',
    `${uuid(1)}\u0000`,
    'x'.repeat(5_000),
  ),
);
const validTime = fc.constantFrom('2026-11-23T10:00:00Z', '2026-11-23T11:00:00.250+01:00');
const badTime = fc.oneof(
  notAString,
  unstorable,
  fc.constantFrom(
    '',
    'yesterday',
    '2026-02-30T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-01-01',
    '2026-01-01T00:00:00',
    '2026-01-01T24:00:00Z',
    '2026-01-01T00:00:00+25:00',
    '2026-1-1T00:00:00Z',
    '0000-01-01T00:00:00Z',
    '9999-12-31T23:59:59-23:59',
    '-000001-01-01T00:00:00Z',
    '+275760-09-13T00:00:00Z',
    '２０２６-01-01T00:00:00Z',
    'Mon, 23 Nov 2026 10:00:00 GMT',
  ),
);
/** Times whose text is well formed but which lie outside what the log keeps. */
const outOfRangeTime = fc.constantFrom(
  '0000-01-01T00:00:00Z',
  '0000-12-31T23:59:59+23:59',
  '9999-12-31T23:59:59-23:59',
);

/** A field: how a valid value looks, and values it refuses for certain. */
interface Field {
  valid: fc.Arbitrary<unknown>;
  invalid: fc.Arbitrary<unknown>;
}
const field = (valid: fc.Arbitrary<unknown>, invalid: fc.Arbitrary<unknown>): Field => ({
  valid,
  invalid,
});

const id = field(
  fc.constantFrom('a', 'item-1', 'x/y', 'ü', '__proto__'),
  badString(limits.idLength, 1),
);
const name = field(
  fc.constantFrom('crawl', 'fetch', 'Ünïcode', 'toString'),
  badString(limits.nameLength, 1),
);
const text = field(fc.constantFrom('', 'slow origin', 'ok'), badString(limits.textLength, 0));
const count = field(
  fc.nat(10_000),
  fc.oneof(notANumber, fc.constantFrom(-1, 1.5, 2 ** 53, 1e300, -0.5)),
);
const json = field(validJson, badJson);
const durationMs = field(fc.nat(60_000), fc.oneof(notANumber, fc.constantFrom(-1, -0.001)));
const many = <T>(length: number, make: (index: number) => T) =>
  Array.from({ length }, (_, index) => make(index));

const failureError = field(
  fc.constantFrom<unknown>(
    { message: 'read ECONNRESET', category: 'network', retryable: true },
    { message: 'boom', stack: ['at a', 'at b'], stage: 'fetch', code: 'E1', file: 'a.ts' },
  ),
  fc.oneof(
    notAString,
    unstorable.map((message) => ({ message })),
    fc.constantFrom<unknown>(
      'boom',
      {},
      { message: 1 },
      { message: 'm', extra: 1 },
      { message: 'm', retryable: 'yes' },
      { message: 'm', category: '' },
      { message: 'm', stack: 'at a' },
      { message: 'm', stack: many(limits.stackFrames + 1, (index) => `at f${index}`) },
      { message: 'm', stack: ['x'.repeat(limits.stackFrameLength + 1)] },
      { message: 'x'.repeat(limits.textLength + 1) },
      { message: 'm', file: 'x'.repeat(limits.textLength + 1) },
    ),
  ),
);
const stages = field(
  fc.constantFrom<unknown>([{ name: 'fetch' }, { name: 'parse', weight: 2 }], []),
  fc.oneof(
    notAString.filter((value) => !Array.isArray(value) || value.length > 0),
    fc.constantFrom<unknown>(
      'fetch',
      [{}],
      [null],
      [{ name: '' }],
      [{ name: 'a', weight: 0 }],
      [{ name: 'a', weight: -1 }],
      [{ name: 'a', weight: 1e7 }],
      [{ name: 'a', weight: '1' }],
      [{ name: 'a', weight: infinity }],
      [{ name: 'a', extra: true }],
      many(limits.stages + 1, (index) => ({ name: `s${index}` })),
    ),
  ),
);
const plannedItems = field(
  fc.constantFrom<unknown>([{ id: 'a' }], [{ id: 'b', type: 'page', group: 'g' }]),
  fc.oneof(
    notAString,
    fc.constantFrom<unknown>(
      [],
      'a',
      [{}],
      [null],
      [{ id: 1 }],
      [{ id: '' }],
      [{ id: 'a', extra: 1 }],
      [{ id: 'a', type: '' }],
      many(limits.itemsPerEvent + 1, (index) => ({ id: `${index}` })),
    ),
  ),
);
const itemIds = field(
  fc.constantFrom<unknown>(['a'], ['a', 'b']),
  fc.oneof(
    // ['a'] is a valid list of item ids.
    notAString.filter((value) => !Array.isArray(value) || value.length !== 1),
    fc.constantFrom<unknown>(
      [],
      [1],
      [''],
      [null],
      'a',
      many(limits.itemsPerEvent + 1, (index) => `${index}`),
    ),
  ),
);
/** A bounded map of values: entries of the wrong type, bad keys, too many entries. */
function boundedMap(valid: unknown, wrong: readonly unknown[]) {
  return field(
    fc.constantFrom<unknown>({ k: valid }, {}),
    fc.oneof(
      fc.constantFrom<unknown>(
        'x',
        1,
        null,
        [],
        [valid],
        { '': valid },
        { ['k'.repeat(limits.nameLength + 1)]: valid },
        Object.fromEntries(many(limits.mapEntries + 1, (index) => [`k${index}`, valid])),
      ),
      fc.constantFrom(...wrong).map((value) => ({ k: value })),
      unstorable.map((key) => ({ [key]: valid })),
    ),
  );
}
const labels = boundedMap('prod', [1, null, true, 'x'.repeat(limits.nameLength + 1), nul]);
const metrics = boundedMap(1.5, ['1', null, true, infinity, {}]);
const counts = boundedMap(2, [1.5, 1e13, -1e13, '1', null, infinity]);

/** The catalogue as fields: required and optional, each with valid and refused values. */
interface Shape {
  required: Record<string, Field>;
  optional: Record<string, Field>;
}
const catalogue: Record<string, Shape> = {
  'job.started': {
    required: { name, kind: name, project: name },
    optional: {
      dataset: name,
      total: count,
      unit: name,
      stages,
      config: json,
      labels,
      parentJobId: id,
    },
  },
  'job.scope_changed': { required: { total: count }, optional: {} },
  'items.planned': { required: { items: plannedItems }, optional: {} },
  'stage.started': { required: { stage: name }, optional: { total: count } },
  'item.started': {
    required: { itemId: id },
    optional: {
      attempt: field(
        fc.integer({ min: 1, max: 10 }),
        fc.oneof(notANumber, fc.constantFrom(0, -1, 1.5, 1_000_001)),
      ),
      worker: name,
      leaseMs: field(
        fc.integer({ min: 1, max: 60_000 }),
        fc.oneof(notANumber, fc.constantFrom(0, -1, 1.5, 7 * 24 * 3600 * 1000 + 1)),
      ),
    },
  },
  'item.completed': {
    required: { itemId: id },
    optional: { type: name, durationMs, output: json, metrics },
  },
  'item.failed': {
    required: { itemId: id, error: failureError },
    optional: { type: name, durationMs },
  },
  'item.skipped': { required: { itemId: id }, optional: { type: name, reason: text } },
  'items.released': { required: { itemIds, reason: text }, optional: {} },
  'progress.reported': {
    required: {},
    optional: {
      processed: count,
      total: count,
      percent: field(
        fc.integer({ min: 0, max: 100 }),
        fc.oneof(notANumber, fc.constantFrom(-1, 100.5, 101, 1e9)),
      ),
      message: text,
      counts,
      current: text,
    },
  },
  'checkpoint.saved': { required: { cursor: json }, optional: { note: text } },
  'log.written': {
    required: {
      level: field(
        fc.constantFrom('debug', 'info', 'warn', 'error'),
        fc.oneof(notAString, fc.constantFrom('fatal', 'INFO', '', 'info ')),
      ),
      message: text,
    },
    optional: { context: json },
  },
  'job.paused': { required: {}, optional: { reason: text } },
  'job.resumed': { required: {}, optional: { reason: text } },
  'job.completed': { required: {}, optional: { result: json } },
  'job.failed': { required: { error: failureError }, optional: {} },
  'job.cancelled': { required: {}, optional: { reason: text } },
};
const catalogueTypes = Object.keys(catalogue);

/** Valid data of a shape: every required field and some optional ones. */
function validData(shape: Shape): fc.Arbitrary<Record<string, unknown>> {
  const valid = (fields: Record<string, Field>) =>
    Object.fromEntries(Object.entries(fields).map(([key, spec]) => [key, spec.valid]));
  return fc
    .tuple(fc.record(valid(shape.required)), fc.record(valid(shape.optional), { requiredKeys: [] }))
    .map(([required, optional]) => ({ ...required, ...optional }));
}

/** Keys no shape knows: a strict object refuses each. */
const unknownKey = fc.constantFrom('extra', 'itemID', 'Name', 'toString', ' name', '');

/** Data of a shape with one break that makes it invalid for certain. */
function brokenData(shape: Shape): fc.Arbitrary<unknown> {
  const fields = { ...shape.required, ...shape.optional };
  const keys = Object.keys(fields);
  const required = Object.keys(shape.required);
  const breaks: fc.Arbitrary<(data: Record<string, unknown>) => unknown>[] = [
    fc
      .tuple(unknownKey, fc.oneof(validJson, notAString))
      .map(([key, value]) => (data) => ({ ...data, [key]: value })),
    fc
      .constantFrom<unknown>(null, 1, 'data', [], true, [{}], undefined)
      .map((value) => () => value),
  ];
  if (keys.length > 0) {
    breaks.push(
      fc.constantFrom(...keys).chain((key) =>
        fields[key]!.invalid.map((value) => (data: Record<string, unknown>) => ({
          ...data,
          [key]: value,
        })),
      ),
    );
  }
  if (required.length > 0) {
    breaks.push(
      fc.constantFrom(...required).map((key) => (data: Record<string, unknown>) => {
        const { [key]: _dropped, ...rest } = data;
        return rest;
      }),
    );
  }
  return fc.tuple(validData(shape), fc.oneof(...breaks)).map(([data, breakIt]) => breakIt(data));
}

const catalogueType = fc.constantFrom(...catalogueTypes);
const customType = fc.constantFrom('x.ping', 'x.crawler:page-done', 'x.A_1.b');
/** A valid event of the catalogue or a custom one. */
const validEvent = fc.oneof(
  catalogueType.chain((type) => validData(catalogue[type]!).map((data) => ({ type, data }))),
  fc.tuple(customType, validJson).map(([type, data]) => ({ type, data })),
);
/** Types no catalogue or custom name matches. */
const unknownType = fc.oneof(
  notAString,
  unstorable,
  fc.constantFrom(
    '',
    'item.exploded',
    'job.Started',
    'ITEM.STARTED',
    ' item.started',
    'item.started ',
    'x.',
    'x',
    'x.-bad',
    'x.bad space',
    'X.custom',
    `x.${'a'.repeat(101)}`,
    '__proto__',
    'constructor',
    'toString',
    'hasOwnProperty',
    'y'.repeat(limits.nameLength + 1),
  ),
);

/** An event that is invalid for certain: its data, its type or its envelope is broken. */
const brokenEvent: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 8,
    arbitrary: catalogueType.chain((type) =>
      brokenData(catalogue[type]!).map((data) => ({ type, data })),
    ),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(customType, fc.oneof(badJson, fc.constantFrom(infinity, negativeInfinity)))
      .map(([type, data]) => ({ type, data })),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        unknownType,
        fc.oneof(
          validJson,
          validEvent.map((event) => event.data),
        ),
      )
      .map(([type, data]) => ({ type, data })),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        validEvent,
        fc.oneof(
          badEventId.map((eventId) => ({ eventId })),
          badTime.map((occurredAt) => ({ occurredAt })),
          fc
            .oneof(
              // {} is valid metadata: every field is optional.
              notAString.filter((value) => !isEmptyObject(value)),
              fc.constantFrom<unknown>(
                { actor: 1 },
                { extra: 'x' },
                { correlationId: '' },
                { source: 'x'.repeat(limits.nameLength + 1) },
                { actor: nul },
                { causationId: loneHigh },
              ),
            )
            .map((metadata) => ({ metadata })),
          fc
            .constantFrom<unknown>(0, -1, 1.5, '1', null, 1_001, infinity)
            .map((schemaVersion) => ({ schemaVersion })),
          unknownKey
            .filter((key) => key !== '')
            .map((key) => ({ [key === 'toString' ? 'streamId' : key]: 'x' })),
          fc.constant({ type: undefined }),
        ),
      )
      .map(([event, broken]) => ({ ...event, ...broken })),
  },
  {
    weight: 1,
    arbitrary: catalogueType.chain((type) =>
      validData(catalogue[type]!).map((data) => ({ type, data, schemaVersion: 2 })),
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, 1, 'event', [], true) },
);

/** A batch with at least one broken event among valid ones. */
const brokenBatch = fc
  .tuple(
    fc.array(validEvent, { maxLength: 3 }),
    brokenEvent,
    fc.array(validEvent, { maxLength: 2 }),
  )
  .map(([before, broken, after]) => [...before, broken, ...after]);

const badExpectedVersion = fc.constantFrom<unknown>(
  -1,
  1.5,
  '1',
  'ANY',
  'none',
  'no-stream',
  '',
  null,
  true,
  [],
  {},
  2 ** 53,
  infinity,
  nul,
);

/** More events than one append takes (built once: it is large). */
const tooManyEvents = {
  events: many(limits.eventsPerAppend + 1, () => ({ type: 'x.a', data: 0 })),
};

/** An append body that is refused for certain, or valid but for another version. */
function badAppendBody(jobId: string, versions: ReadonlyMap<string, number>) {
  const version = versions.get(jobId) ?? 0;
  const stale: unknown[] =
    version > 0 ? [version - 1, version + 1, 'no_stream', 0] : ['stream_exists', 1, 7];
  return fc.oneof(
    { weight: 6, arbitrary: brokenBatch.map((events) => ({ events })) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.array(validEvent, { minLength: 1, maxLength: 3 }), badExpectedVersion)
        .map(([events, expectedVersion]) => ({ events, expectedVersion })),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.array(validEvent, { minLength: 1, maxLength: 3 }), fc.constantFrom(...stale))
        .map(([events, expectedVersion]) => ({ events, expectedVersion })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(validEvent, fc.constantFrom(...seededEventIds, uuid(77)))
        .map(([event, eventId]) => ({
          // The same id twice in one batch, or the id of another stream's event.
          events:
            eventId === uuid(77)
              ? [
                  { ...event, eventId },
                  { ...event, eventId },
                ]
              : [{ ...event, eventId, data: { differs: true }, type: 'x.other' }],
        })),
    },
    {
      weight: 2,
      arbitrary: fc.oneof(
        fc.constantFrom<unknown>(
          {},
          { events: null },
          { events: 'x' },
          { events: 1 },
          { events: {} },
          { events: [] },
          { expectedVersion: 1 },
          [{ events: [{ type: 'x.a', data: 1 }] }],
          'events',
          42,
          null,
          true,
        ),
        fc
          .tuple(fc.array(validEvent, { minLength: 1, maxLength: 2 }), unknownKey)
          .map(([events, key]) => ({ events, [key === '' ? 'extra' : key]: 1 })),
        fc.constant(tooManyEvents),
        deepJson.map((events) => ({ events })),
      ),
    },
  );
}

/** A `POST /v1/jobs` body: job.started facts and envelope, one of them broken. */
const startShape: Shape = {
  required: catalogue['job.started']!.required,
  optional: {
    ...catalogue['job.started']!.optional,
    jobId: field(fc.constantFrom('new-job', 'another/job'), badString(limits.idLength, 1)),
    eventId: field(fc.constant(uuid(5)), badEventId),
    occurredAt: field(validTime, badTime),
    metadata: field(
      fc.constantFrom<unknown>({ actor: 'me' }, {}),
      fc.constantFrom<unknown>('me', null, { actor: 1 }, { extra: 1 }, { actor: nul }),
    ),
  },
};
const badStartBody = fc.oneof(
  { weight: 8, arbitrary: brokenData(startShape) },
  {
    // Valid, but the job exists: refused as a conflict.
    weight: 2,
    arbitrary: fc
      .tuple(validData(catalogue['job.started']!), fc.constantFrom(...Object.values(seeded)))
      .map(([data, jobId]) => ({ ...data, jobId })),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(validData(catalogue['job.started']!), outOfRangeTime)
      .map(([data, occurredAt]) => ({ ...data, occurredAt, jobId: 'never-started' })),
  },
);

const resumeShape: Shape = {
  required: {},
  optional: {
    leaseExpiredBefore: field(
      fc.constantFrom<unknown>('2026-11-23T10:00:00Z', 1_795_000_000_000),
      fc.oneof(
        // Numbers are times (epoch ms), and these two texts are well-formed times.
        badTime.filter(
          (value) =>
            typeof value !== 'number' &&
            !['0000-01-01T00:00:00Z', '9999-12-31T23:59:59-23:59'].includes(String(value)),
        ),
        fc.constantFrom<unknown>(infinity, true, {}),
      ),
    ),
    defaultLeaseMs: field(
      fc.constantFrom(0, 1_000),
      fc.oneof(notANumber, fc.constantFrom(-1, 1.5, 2 ** 53)),
    ),
    reason: field(fc.constantFrom('restart'), badString(limits.textLength, 1)),
  },
};
/** A resume body: refused for certain, except towards jobs a resume cannot change. */
function badResumeBody(jobId: string) {
  const broken = fc.oneof(
    { weight: 5, arbitrary: brokenData(resumeShape) },
    { weight: 1, arbitrary: fc.constantFrom<unknown>(null, [], 'resume', 1, true) },
  );
  if (resumable.includes(jobId)) return broken;
  return fc.oneof(
    broken,
    validData(resumeShape),
    fc.constantFrom<unknown>(
      { leaseExpiredBefore: 1e300 },
      { leaseExpiredBefore: '0000-01-01T00:00:00Z' },
      { leaseExpiredBefore: -8.64e15 - 1 },
    ),
  );
}

// ---------------------------------------------------------------------------------------
// Paths, queries and headers.

/** encodeURIComponent, except that a lone surrogate goes out as its (invalid) UTF-8 bytes. */
const enc = (value: string) =>
  value
    .split(/([\ud800-\udfff])/)
    .map((part) =>
      /^[\ud800-\udfff]$/.test(part)
        ? [
            ...Buffer.from([
              0xe0 | (part.charCodeAt(0) >> 12),
              0x80 | ((part.charCodeAt(0) >> 6) & 63),
              0x80 | (part.charCodeAt(0) & 63),
            ]),
          ]
            .map((byte) => `%${byte.toString(16).toUpperCase()}`)
            .join('')
        : encodeURIComponent(part),
    )
    .join('');
const knownJobs = Object.values(seeded);
/** Job ids as they go in a path: known ones, unknown ones, and bad ones. */
const jobSegment = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...knownJobs).map(enc) },
  { weight: 2, arbitrary: fc.constantFrom('unknown-job', 'nope', enc('ünknown'), '0') },
  {
    weight: 4,
    arbitrary: fc.oneof(
      {
        weight: 1,
        arbitrary: fc.integer({ min: limits.idLength + 1, max: 2_000 }).map((n) => 'i'.repeat(n)),
      },
      {
        weight: 6,
        arbitrary: fc.constantFrom(
          '',
          '%2F',
          'a%2Fb',
          '..',
          '%2e%2e',
          '.',
          '..%2F..%2Fetc%2Fpasswd',
          '%',
          '%zz',
          'a%',
          '%C3',
          '%C3%28',
          '%ED%A0%80',
          '%F0%9F',
          '%C0%AF',
          '%FF',
          '%00',
          'a%00b',
          '%E2%80%AE',
          '%EF%BB%BF',
          enc('🦀'),
          enc('日本語'),
          'seed-running%20',
          'SEED-RUNNING',
          'seed-running;v=1',
          'a%3Fb',
          'a%23b',
          '%25',
          '%252F',
          'x'.repeat(limits.idLength) + '%C3%BC',
        ),
      },
    ),
  },
);

/** The read routes of one job. */
const jobReads = [
  '',
  '/eta',
  '/throughput',
  '/summary',
  '/failures',
  '/items',
  '/timeline',
  '/logs',
];

/** A query value that is never right: bad percent escapes and unstorable text. */
const junkValue = fc.constantFrom('%', '%zz', '%ED%A0%80', '%00', '%C3', 'a%00b', '%FF%FE');
const junkQuery = fc.oneof(
  fc.constantFrom(
    '&',
    '&&',
    '=',
    '=x',
    'bogus=1',
    '__proto__=1',
    'constructor=x',
    'hasOwnProperty=1',
    'toString=1',
    '__proto__[x]=1',
    'status[]=running',
    'limit[0]=1',
    '%zz=1',
    '%00=1',
    'a'.repeat(3_000) + '=1',
  ),
);

type QueryShape = Record<string, { valid: fc.Arbitrary<string>; invalid: fc.Arbitrary<string> }>;
const q = (valid: string[], invalid: fc.Arbitrary<string>) => ({
  valid: fc.constantFrom(...valid).map(enc),
  invalid,
});
const encoded = (values: fc.Arbitrary<string>) => values.map(enc);
const badName = encoded(
  fc.oneof(
    fc.constantFrom('', nul, '\u0000'),
    fc.integer({ min: limits.nameLength + 1, max: 400 }).map((n) => 'n'.repeat(n)),
  ),
);
const badLimit = (max: number) =>
  encoded(
    fc.constantFrom(
      '0',
      '-1',
      '1.5',
      'abc',
      '',
      ' ',
      '1e10',
      'Infinity',
      'NaN',
      String(max + 1),
      '99999999999999999999',
      '0x',
      nul,
    ),
  );
const badBoolean = encoded(fc.constantFrom('yes', '1', 'TRUE', '', 'true ', nul));
const badText = encoded(
  fc.oneof(
    fc.constantFrom('', nul, loneHigh),
    fc.integer({ min: 201, max: 400 }).map((n) => 't'.repeat(n)),
  ),
);
const isoTimes = ['2026-11-23T10:00:00Z', '2026-11-23T11:00:00+01:00'];
const badQueryTime = encoded(
  fc.oneof(
    badTime.filter((value) => typeof value === 'string').map(String),
    outOfRangeTime,
    fc.constantFrom('0000-01-01T00:00:00Z', '1000000'),
  ),
);
/** Timeline cursors (positions) that are malformed or past any position. */
const badPosition = encoded(
  fc.constantFrom(
    'abc',
    '-1',
    '1.5',
    '',
    '1:2',
    '99999999999999999999',
    '9223372036854775808',
    '18446744073709551616',
    '1'.repeat(41),
    nul,
  ),
);
/** Log cursors that are malformed, or out of the range of a transaction id or a position. */
const badCursorText = fc.constantFrom(
  'yesterday',
  '',
  '1',
  ':',
  '1:',
  ':1',
  '1:2:3',
  '-1:0',
  '1.5:2',
  '0x1:2',
  '١:٢',
  '1:2 ',
  `${'1'.repeat(21)}:1`,
  '99999999999999999999:1',
  '18446744073709551616:0',
  '1:99999999999999999999',
  '0:9223372036854775808',
  'Infinity:0',
  nul,
);
const badCursor = encoded(badCursorText);
const statusList = ['running', 'paused', 'running,paused', 'completed,failed,cancelled,pending'];
const badStatusList = encoded(
  fc.constantFrom(
    'bogus',
    'running,bogus',
    'RUNNING',
    'running,running,running,running,running,running,running',
    'x'.repeat(2_001),
    nul,
  ),
);
const badTypeList = encoded(
  fc.constantFrom(
    'x'.repeat(201),
    many(101, (index) => `t${index}`).join(','),
    'x'.repeat(2_001),
    `item.completed,${nul}`,
  ),
);

const jobsQuery: QueryShape = {
  project: q(['web', 'odd project/ü', 'none'], badName),
  kind: q(['crawl', 'k'], badName),
  status: q(statusList, badStatusList),
  active: q(['true', 'false'], badBoolean),
  parentJobId: q([seeded.running, 'none'], badName),
  q: q(['seed', '%', '_', 'ü'], badText),
  limit: q(['1', '5', '10000'], badLimit(10_000)),
  cursor: q(
    ['1795446738868:seed-running', '0:a'],
    encoded(
      fc.constantFrom(
        'yesterday',
        '1:',
        ':a',
        '12345678901234567:a',
        'x'.repeat(301),
        `1:${nul}`,
        `1:${loneHigh}`,
        `99999999999999999:a`,
      ),
    ),
  ),
};
const timelineQuery: QueryShape = {
  type: q(['item.failed', 'x.*', 'item.*,log.written', ',,'], badTypeList),
  since: q(isoTimes, badQueryTime),
  until: q(isoTimes, badQueryTime),
  q: q(['slow', '%', '\\'], badText),
  after: q(['1', '0', '9223372036854775807'], badPosition),
  limit: q(['1', '1000'], badLimit(1_000)),
  order: q(['asc', 'desc'], encoded(fc.constantFrom('up', 'ASC', '', nul))),
};
const logsQuery: QueryShape = {
  level: q(['warn', 'info'], encoded(fc.constantFrom('fatal', 'WARN', '', nul))),
  after: q(['1', '0'], badPosition),
  limit: q(['1', '1000'], badLimit(1_000)),
  order: q(['asc', 'desc'], encoded(fc.constantFrom('up', ''))),
};
const itemsQuery: QueryShape = {
  status: q(
    ['pending', 'in_flight', 'failed', 'stuck'],
    encoded(fc.constantFrom('done', '', 'STUCK')),
  ),
  leaseMs: q(
    ['0', '1000'],
    encoded(fc.constantFrom('-1', '1.5', 'abc', '1e400', '99999999999999999999', nul)),
  ),
  limit: q(['1', '10000'], badLimit(10_000)),
};
const failuresQuery: QueryShape = {
  format: q(['groups', 'export'], encoded(fc.constantFrom('csv', '', 'EXPORT'))),
};
const progressQuery: QueryShape = {
  active: q(['true', 'false'], badBoolean),
  operationId: q([seeded.running, 'none'], badName),
};
const stageQuery: QueryShape = {
  project: q(['web'], badName),
  kind: q(['crawl'], badName),
};
const badJobList = encoded(
  fc.constantFrom(
    'j'.repeat(limits.idLength + 1),
    many(1_001, (index) => `${index}`).join(','),
    `seed-running,${nul}`,
  ),
);
const streamQuery: QueryShape = {
  project: q(['web'], badName),
  job: q([seeded.running, `${seeded.running},${seeded.done}`], badJobList),
  type: q(['item.failed'], badTypeList),
  after: q(['0:0'], badCursor),
};

/**
 * A query of a shape: some keys valid, some invalid, maybe junk, maybe a key twice.
 * With `broken`, at least one part is invalid for certain (an invalid value, a key twice,
 * or a key the route does not know).
 */
function queryOf(shape: QueryShape, broken: boolean): fc.Arbitrary<string> {
  const keys = Object.keys(shape);
  const part = fc
    .constantFrom(...keys)
    .chain((key) =>
      fc.oneof(shape[key]!.valid, shape[key]!.invalid, junkValue).map((value) => `${key}=${value}`),
    );
  const sure = fc.oneof(
    fc.constantFrom(...keys).chain((key) => shape[key]!.invalid.map((value) => `${key}=${value}`)),
    fc
      .constantFrom(...keys)
      .chain((key) =>
        fc
          .tuple(shape[key]!.valid, shape[key]!.valid)
          .map(([one, two]) => `${key}=${one}&${key}=${two}`),
      ),
    fc.constantFrom('bogus=1', 'Limit=1', 'after%00=1', 'job%5B%5D=a'),
  );
  return fc
    .tuple(
      fc.array(part, { maxLength: 4 }),
      broken ? sure.map((text) => [text]) : fc.array(sure, { maxLength: 1 }),
      fc.array(junkQuery, { maxLength: broken ? 0 : 1 }),
    )
    .chain(([parts, sureParts, junk]) =>
      fc.shuffledSubarray([...parts, ...sureParts, ...junk], {
        minLength: parts.length + sureParts.length + junk.length,
      }),
    )
    .map((parts) => parts.join('&'));
}

/** Authorization headers: mostly the admin token, sometimes one that is wrong. */
const badAuthorization = fc.constantFrom<string | undefined>(
  undefined,
  '',
  'Bearer',
  'Bearer ',
  'Basic YWRtaW46YWRtaW4=',
  `Bearer ${adminToken} extra`,
  `Bearer ${adminToken.toUpperCase()}`,
  `Token ${adminToken}`,
  `Bearer${adminToken}`,
  `Bearer ${adminToken.slice(0, -1)}`,
  `Bearer ${'x'.repeat(8_000)}`,
  'Bearer \u00ff\u00fe\u00e9',
  `Bearer ${adminToken},Bearer ${adminToken}`,
  'Bearer null',
  'Bearer undefined',
  `Bearer ${readToken}`,
  `Bearer ${appendToken}`,
);
const authorization = fc.oneof(
  { weight: 8, arbitrary: fc.constant<string | undefined>(`Bearer ${adminToken}`) },
  { weight: 1, arbitrary: badAuthorization },
);
const server = fc.oneof(
  { weight: 4, arbitrary: fc.constant<'secured' | 'open'>('secured') },
  { weight: 1, arbitrary: fc.constant<'secured' | 'open'>('open') },
);
/** Headers of a request: authorization (ignored without tokens) and sometimes Origin. */
const commonHeaders = fc
  .tuple(
    authorization,
    fc.option(
      fc.constantFrom('http://evil.example', 'null', 'http://[', 'file://', 'http://127.0.0.1:1'),
      { freq: 20 },
    ),
  )
  .map(([auth, origin]) => {
    const headers: Record<string, string> = {};
    if (auth !== undefined) headers.authorization = auth;
    if (origin !== null) headers.origin = origin;
    return headers;
  });

const jsonContentType = 'application/json';
const badContentType = fc.constantFrom(
  'text/plain',
  'text/plain; charset=utf-8',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json; charset=utf-16',
  'application/json; charset=latin1',
  'application/jsonp',
  'APPLICATION/JSON',
  'application/json, text/plain',
  'application/octet-stream',
  '',
  ';',
  'application/',
  '*/*',
);

/** JSON text that is not JSON: garbage, or valid bodies cut short. */
function notJson(from: fc.Arbitrary<unknown>) {
  return fc.oneof(
    fc.constantFrom(
      '',
      ' ',
      '{',
      '{"events": [',
      "{'events': []}",
      '{"events": [],}',
      '{"events": [{"type": "x.a", "data": NaN}]}',
      '{"events": [{"type": "x.a", "data": undefined}]}',
      '{"events": /* no */ []}',
      '\u0000',
      '{"events": [{"type": "x.a", "data": "a\u0000b"}]}',
      // A lone surrogate escaped in JSON text (raw, it would go out as U+FFFD in UTF-8).
      '{"events": [{"type": "x.a", "data": "\\ud800"}]}',
      '\ufeff{"events": [',
      'null null',
      '{"events": []} trailing',
      '[]]',
      '"unterminated',
      '{"__proto__": {"polluted": true}, "events": []}',
      '{"constructor": {"prototype": {"polluted": true}}, "events": []}',
      '{"events": [{"type": "x.a", "data": 1, "type": "x.b"}], "events": 1}',
      // Nesting too deep for JSON.parse itself, and deep inside an event.
      `{"events": [{"type": "x.a", "data": ${'['.repeat(60_000)}${']'.repeat(60_000)}}]}`,
      `{"name": "n", "kind": "k", "project": "p", "config": ${'{"a":'.repeat(3_000)}1${'}'.repeat(3_000)}}`,
    ),
    fc.tuple(from, fc.double({ min: 0, max: 1, noNaN: true })).map(([value, at]) => {
      const full = toJsonText(value);
      return full.slice(0, Math.floor(at * (full.length - 1)));
    }),
    // Any text (ASCII: the full-Unicode generator is slow to build), or a few non-ASCII ones.
    fc
      .oneof(
        fc.string({ unit: 'binary-ascii', maxLength: 40 }),
        fc.constantFrom('ü€𝄞', '\u2028{}', '\ufffe', '日本語'),
      )
      .filter((value) => {
        try {
          JSON.parse(value);
          return false;
        } catch {
          return true;
        }
      }),
  );
}

// ---------------------------------------------------------------------------------------
// The request builders.

function builders(versions: ReadonlyMap<string, number>) {
  const postTo = (
    kind: string,
    path: fc.Arbitrary<string>,
    body: (path: string) => fc.Arbitrary<unknown>,
  ) =>
    fc.tuple(server, path, commonHeaders).chain(([target, route, headers]) =>
      body(route).map((value) =>
        probe({
          kind,
          server: target,
          method: 'POST',
          target: route,
          headers: { ...headers, 'content-type': jsonContentType },
          body: toJsonText(value),
        }),
      ),
    );
  /** The job id a path names, decoded where it decodes. */
  const jobOf = (segment: string) => {
    try {
      return decodeURIComponent(segment);
    } catch {
      return segment;
    }
  };

  const appendPath = jobSegment.map((segment) => `/v1/jobs/${segment}/events`);
  const appendBody = postTo('append body', appendPath, (path) =>
    badAppendBody(jobOf(path.slice('/v1/jobs/'.length, -'/events'.length)), versions),
  );
  const startBody = postTo('start body', fc.constant('/v1/jobs'), () => badStartBody);
  const resumePath = jobSegment.map((segment) => `/v1/jobs/${segment}/resume`);
  const resumeBody = postTo('resume body', resumePath, (path) =>
    badResumeBody(jobOf(path.slice('/v1/jobs/'.length, -'/resume'.length))),
  );

  /** Any POST route with a body that is not JSON, or a JSON body of the wrong type. */
  const postPaths = fc.oneof(
    fc.constant('/v1/jobs'),
    jobSegment.map((segment) => `/v1/jobs/${segment}/events`),
    jobSegment.map((segment) => `/v1/jobs/${segment}/resume`),
  );
  const brokenBody = fc.oneof(
    notJson(badAppendBody(seeded.running, versions)),
    notJson(badStartBody),
  );
  const malformed = fc
    .tuple(server, postPaths, commonHeaders, brokenBody)
    .map(([target, path, headers, body]) =>
      probe({
        kind: 'malformed JSON',
        server: target,
        method: 'POST',
        target: path,
        headers: { ...headers, 'content-type': jsonContentType },
        body,
      }),
    );
  const contentTypes = fc
    .tuple(
      server,
      postPaths,
      commonHeaders,
      fc.option(badContentType, { freq: 8 }),
      // Refused on every POST route, whatever the content type makes of them.
      fc.oneof(
        brokenBatch.map((events) => toJsonText({ events })),
        brokenData(startShape).map(toJsonText),
        fc.constantFrom('events=1', '--x\r\ncontent-disposition: form-data; name="a"\r\n\r\n1'),
      ),
    )
    .map(([target, path, headers, contentType, body]) =>
      probe({
        kind: 'content type',
        server: target,
        method: 'POST',
        target: path,
        headers: contentType === null ? headers : { ...headers, 'content-type': contentType },
        body,
      }),
    );

  /** A GET route with its query shape; streams must get a refused query or header. */
  const getRoutes = fc.oneof(
    fc.constant({ path: '/v1/jobs', shape: jobsQuery, stream: false }),
    jobSegment.map((segment) => ({ path: `/v1/jobs/${segment}`, shape: {}, stream: false })),
    fc
      .tuple(jobSegment, fc.constantFrom('/eta', '/throughput', '/summary'))
      .map(([segment, route]) => ({
        path: `/v1/jobs/${segment}${route}`,
        shape: {},
        stream: false,
      })),
    jobSegment.map((segment) => ({
      path: `/v1/jobs/${segment}/failures`,
      shape: failuresQuery,
      stream: false,
    })),
    jobSegment.map((segment) => ({
      path: `/v1/jobs/${segment}/items`,
      shape: itemsQuery,
      stream: false,
    })),
    jobSegment.map((segment) => ({
      path: `/v1/jobs/${segment}/timeline`,
      shape: timelineQuery,
      stream: false,
    })),
    jobSegment.map((segment) => ({
      path: `/v1/jobs/${segment}/logs`,
      shape: logsQuery,
      stream: false,
    })),
    fc
      .oneof(
        fc.constantFrom('web', 'all', enc('odd project/ü'), 'none'),
        jobSegment.filter((segment) => !knownJobs.map(enc).includes(segment)),
      )
      .map((project) => ({
        path: `/v1/projects/${project}/progress`,
        shape: progressQuery,
        stream: false,
      })),
    fc.constant({ path: '/v1/metrics/stages', shape: stageQuery, stream: false }),
    fc.constantFrom(
      { path: '/health', shape: {}, stream: false },
      { path: '/metrics', shape: {}, stream: false },
      { path: '/openapi.json', shape: {}, stream: false },
      { path: '/v1/ws', shape: {}, stream: false },
      { path: '/dashboard/catalogue.js', shape: {}, stream: false },
    ),
    jobSegment.map((segment) => ({
      path: `/v1/jobs/${segment}/stream`,
      shape: { after: streamQuery.after! },
      stream: true,
    })),
    fc.constant({ path: '/v1/stream', shape: streamQuery, stream: true }),
  );
  /** Last-Event-ID values a stream refuses for certain (none is a cursor after trimming). */
  const badLastEventId = badCursorText.filter(
    // node:http sends Latin-1 header values only, and strips the space.
    (value) => value !== '1:2 ' && /^[\x20-\x7e]+$/.test(value),
  );
  const getQuery = fc
    .tuple(server, getRoutes, commonHeaders, fc.boolean(), fc.option(badLastEventId))
    .chain(([target, route, headers, brokenQuery, lastEventId]) => {
      const header = route.stream && lastEventId !== null;
      // A stream with a good query and a good header would stay open.
      const mustBreak = route.stream && !header;
      const keys = Object.keys(route.shape);
      const query =
        keys.length === 0
          ? fc.oneof(fc.constant(''), junkQuery)
          : queryOf(route.shape, mustBreak || brokenQuery);
      return query.map((text) =>
        probe({
          kind: route.stream ? 'stream query' : 'query',
          server: target,
          method: 'GET',
          target: text ? `${route.path}?${text}` : route.path,
          headers: header ? { ...headers, 'last-event-id': lastEventId } : headers,
        }),
      );
    });

  /** Every route under every method it does not have, with or without a body. */
  const anyRoute = fc.oneof(
    fc.constantFrom(
      '/v1/jobs',
      '/v1/stream',
      '/v1/ws',
      '/v1/metrics/stages',
      '/health',
      '/metrics',
      '/openapi.json',
      '/',
      '/dashboard/',
      '/dashboard/index.html',
      '/projects/web',
    ),
    fc
      .tuple(jobSegment, fc.constantFrom(...jobReads, '/events', '/resume', '/stream'))
      .map(([segment, route]) => `/v1/jobs/${segment}${route}`),
    jobSegment.map((segment) => `/v1/projects/${segment}/progress`),
  );
  const methods = fc
    .tuple(
      server,
      anyRoute,
      commonHeaders,
      fc.constantFrom('PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE'),
      fc.option(badAppendBody(seeded.running, versions).map(toJsonText)),
    )
    .map(([target, path, headers, method, body]) =>
      probe({
        kind: 'method',
        server: target,
        method,
        target: path,
        headers: body === null ? headers : { ...headers, 'content-type': jsonContentType },
        ...(body === null ? {} : { body }),
      }),
    );
  /** A GET (or HEAD) with a body, on routes that answer at once. */
  const bodyOnGet = fc
    .tuple(
      server,
      anyRoute.filter((path) => !/\/(stream|ws)$/.test(path)),
      commonHeaders,
      fc.constantFrom('GET', 'HEAD'),
      fc.oneof(badAppendBody(seeded.running, versions).map(toJsonText), notJson(validJson)),
    )
    .map(([target, path, headers, method, body]) =>
      probe({
        kind: 'body on GET',
        server: target,
        method,
        target: path,
        headers: { ...headers, 'content-type': jsonContentType },
        body,
      }),
    );

  /** Requests node:http will not send: written byte for byte on a plain socket. */
  const appendTarget = `/v1/jobs/${seeded.running}/events`;
  const body = '{"events": [{"type": "x.a", "data": 1}], "expectedVersion": -1}';
  const auth = `Authorization: Bearer ${adminToken}\r\n`;
  const request = (head: string, headers: string, payload = '') =>
    `${head}\r\nHost: {host}\r\n${headers}Connection: close\r\n\r\n${payload}`;
  const rawRequests = fc.oneof(
    fc.constantFrom(
      ...[
        'abc',
        '-1',
        '1.5',
        '0x10',
        '99999999999999999999',
        ' ',
        '',
        `${body.length}, ${body.length + 1}`,
      ].map((length) =>
        request(
          `POST ${appendTarget} HTTP/1.1`,
          `${auth}Content-Type: application/json\r\nContent-Length: ${length}\r\n`,
          body,
        ),
      ),
      request(
        `POST ${appendTarget} HTTP/1.1`,
        `${auth}Content-Type: application/json\r\nContent-Length: ${body.length}\r\nContent-Length: 3\r\n`,
        body,
      ),
      request(
        `POST ${appendTarget} HTTP/1.1`,
        `${auth}Content-Type: application/json\r\nContent-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n`,
        body,
      ),
      request(
        `POST ${appendTarget} HTTP/1.1`,
        `${auth}Content-Type: application/json\r\nContent-Length: 10\r\n`,
        body,
      ),
      request(
        `POST ${appendTarget} HTTP/1.1`,
        `${auth}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n`,
        `zz\r\n${body}\r\n0\r\n\r\n`,
      ),
      request(
        `POST ${appendTarget} HTTP/1.1`,
        `${auth}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n`,
        `5\r\n{"eve\r\n0\r\n\r\n`,
      ),
      request(
        `POST ${appendTarget} HTTP/1.1`,
        `${auth}Content-Type: application/json\r\nTransfer-Encoding: gzip\r\n`,
        body,
      ),
      request(`GET /v1/jobs HTTP/1.1`, `${auth}Content-Length: 5\r\n`, 'hello'),
      request(`GET /v1/jobs HTTP/1.1`, `${auth}Content-Length: abc\r\n`),
      request(`get /v1/jobs HTTP/1.1`, auth),
      request(`FOO /v1/jobs HTTP/1.1`, auth),
      request(`PROPFIND /v1/jobs HTTP/1.1`, auth),
      request(`CONNECT 127.0.0.1:1 HTTP/1.1`, auth),
      request(`OPTIONS * HTTP/1.1`, auth),
      request(`GET http://evil.example/v1/jobs HTTP/1.1`, auth),
      request(`GET v1/jobs HTTP/1.1`, auth),
      request(`GET /v1/jobs/ü HTTP/1.1`, auth),
      request(`GET /v1/jobs/a b HTTP/1.1`, auth),
      request(`GET /v1/jobs/\u0000 HTTP/1.1`, auth),
      request(`GET /v1/jobs/${seeded.running}\u00ff/eta HTTP/1.1`, auth),
      request(`GET /v1/jobs HTTP/2.0`, auth),
      request(`GET /v1/jobs HTTP/1.1`, `${auth}X-Bad Header: 1\r\n`),
      request(`GET /v1/jobs HTTP/1.1`, `${auth}X-Folded: a\r\n b\r\n`),
      request(`GET /v1/jobs HTTP/1.1`, `${auth}X-Control: a\u0001b\r\n`),
      request(`GET /v1/jobs HTTP/1.1`, `${auth}X-Huge: ${'h'.repeat(20_000)}\r\n`),
      request(`GET /v1/jobs HTTP/1.1`, `Authorization: Bearer a\r\n${auth}`),
      request(`GET /v1/jobs HTTP/1.1`, `Authorization: Bearer \u00e9\u00e8\r\n`),
      request(
        `GET /v1/jobs/${seeded.running}/stream HTTP/1.1`,
        `${auth}Last-Event-ID: 0:0\r\nLast-Event-ID: 1:1\r\n`,
      ),
      request(`GET /v1/stream HTTP/1.1`, `${auth}Last-Event-ID: \u00ff:\u00fe\r\n`),
      request(
        `GET /v1/ws HTTP/1.1`,
        `${auth}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n`,
      ),
      request(
        `GET /v1/ws HTTP/1.1`,
        `${auth}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: abc\r\nSec-WebSocket-Version: 13\r\n`,
      ),
      request(
        `GET /v1/ws HTTP/1.1`,
        `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 12\r\n`,
      ),
      `GET /v1/jobs HTTP/1.0\r\n${auth}\r\n`,
      `GET /health HTTP/1.0\r\n\r\n`,
      'NOT HTTP AT ALL\r\n\r\n',
    ),
    jobSegment.map((segment) =>
      request(`DELETE /v1/jobs/${segment} HTTP/1.1`, `${auth}Content-Length: 0\r\n`),
    ),
  );
  const raw = fc.tuple(server, rawRequests).map(([target, text]) =>
    probe({
      kind: 'raw',
      server: target,
      method: text.slice(0, text.indexOf(' ')),
      target: '',
      headers: {},
      raw: text,
      // Without a 'connect' listener, Node hangs up on CONNECT: no answer, and no 5xx.
      mayGoUnanswered: text.startsWith('CONNECT '),
    }),
  );
  /** A body shorter than its Content-Length: the server may wait, then hang up. */
  const shortBody = server.map((target) =>
    probe({
      kind: 'raw',
      server: target,
      method: 'POST',
      target: '',
      headers: {},
      raw: request(
        `POST ${appendTarget} HTTP/1.1`,
        `${auth}Content-Type: application/json\r\nContent-Length: ${body.length + 50}\r\n`,
        body,
      ),
      mayGoUnanswered: true,
    }),
  );

  return fc.oneof(
    { weight: 150, arbitrary: appendBody },
    { weight: 50, arbitrary: startBody },
    { weight: 25, arbitrary: resumeBody },
    { weight: 40, arbitrary: malformed },
    { weight: 20, arbitrary: contentTypes },
    { weight: 120, arbitrary: getQuery },
    { weight: 30, arbitrary: methods },
    { weight: 15, arbitrary: bodyOnGet },
    { weight: 25, arbitrary: raw },
    // Each waits out its timeout: a few are enough.
    { weight: 1, arbitrary: shortBody },
  );
}

/** One run's requests; it prints as the requests that failed, once they were sent. */
interface Batch {
  probes: Probe[];
  failures: string[];
}
function toBatch(probes: Probe[]): Batch {
  const batch: Batch = { probes, failures: [] };
  return Object.defineProperty(batch, fc.toStringMethod, {
    value: () =>
      batch.failures.length === 0
        ? `${probes.length} requests`
        : `${probes.length} requests, of which these failed:\n  ${batch.failures.join('\n  ')}`,
    enumerable: false,
  });
}

/** BAD_INPUT_ALL=1 sends every run and lists every failure, instead of stopping at the first. */
const keepGoing = process.env.BAD_INPUT_ALL === '1';

// ---------------------------------------------------------------------------------------
// Sending.

/** What came back: a status, or why none did. */
interface Answer {
  status?: number;
  /** Failed on a kept-alive socket that the server had closed: worth one more try. */
  staleSocket?: boolean;
  error?: string;
  contentType?: string;
  body?: string;
}

/** Sends one probe over keep-alive node:http; reads the whole answer unless it is a stream. */
function sendHttp(agent: http.Agent, port: number, sent: Probe): Promise<Answer> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (answer: Answer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(answer);
    };
    let request: http.ClientRequest;
    try {
      request = http.request({
        host: '127.0.0.1',
        port,
        agent,
        method: sent.method,
        path: sent.target,
        headers: sent.headers,
      });
    } catch (error) {
      // node:http refused to send it: a test bug, not a server one.
      resolve({ error: `not sent: ${String(error)}` });
      return;
    }
    const timer = setTimeout(() => {
      request.destroy();
      finish({ error: `no answer within ${answerWithinMs} ms` });
    }, answerWithinMs);
    request.on('response', (response) => {
      const contentType = response.headers['content-type'] ?? '';
      if (contentType.startsWith('text/event-stream')) {
        // A stream that opened: the answer is its status; it would never end.
        response.destroy();
        finish({ status: response.statusCode ?? 0, contentType });
        return;
      }
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        finish({
          status: response.statusCode ?? 0,
          contentType,
          body: Buffer.concat(chunks).toString('utf8').slice(0, 500),
        }),
      );
      response.on('error', (error) =>
        finish({ status: response.statusCode ?? 0, error: String(error) }),
      );
    });
    request.on('error', (error) =>
      finish({
        error: String(error),
        // A kept-alive socket the server closed as this request went out (Node's documented
        // race): the request never reached a handler, and may be sent again.
        ...(request.reusedSocket && /ECONNRESET|socket hang up/.test(String(error))
          ? { staleSocket: true }
          : {}),
      }),
    );
    // With a length, so that node:http does not send the body chunked (it would for HEAD).
    if (sent.body === undefined) request.end();
    else {
      const bytes = Buffer.from(sent.body, 'utf8');
      request.setHeader('content-length', bytes.length);
      request.end(bytes);
    }
  });
}

/** Writes a raw request on its own socket and reads every status line that comes back. */
function sendRaw(port: number, sent: Probe): Promise<Answer> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (answer: Answer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    // A request the server may leave waiting for the rest of its body is given a second.
    const timer = setTimeout(
      () => finish(answerOf(true)),
      sent.mayGoUnanswered ? 500 : answerWithinMs,
    );
    const answerOf = (timedOut: boolean): Answer => {
      const text = Buffer.concat(chunks).toString('latin1');
      const statuses = [...text.matchAll(/(?:^|\r\n)HTTP\/1\.[01] (\d{3})/g)]
        .map((match) => Number(match[1]))
        .filter((status) => status >= 200);
      if (statuses.length === 0) {
        return sent.mayGoUnanswered
          ? { status: 0 }
          : { error: timedOut ? `no answer within ${answerWithinMs} ms` : 'closed unanswered' };
      }
      return { status: Math.max(...statuses), body: text.slice(0, 500) };
    };
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', () => finish(answerOf(false)));
    socket.on('close', () => finish(answerOf(false)));
    socket.on('connect', () => {
      // Not ended: a client that half-closes may be hung up on before its answer. Every
      // request says Connection: close (or is HTTP/1.0), so the server ends the exchange.
      socket.write(Buffer.from(sent.raw!.replace('{host}', `127.0.0.1:${port}`), 'utf8'));
    });
  });
}

// ---------------------------------------------------------------------------------------
// The suites.

/** How many probes each store gets: PostgreSQL the full run, PGlite a shorter one. */
const probesPerStore = { postgres: 10_000, pglite: 2_000 } as const;

for (const store of storesUnderTest()) {
  describe.skipIf(!store.available)(`bad input over HTTP: ${store.name}`, () => {
    let ledger: Ledger;
    const servers = new Map<'secured' | 'open', { app: FastifyInstance; port: number }>();
    const agents = {
      secured: new http.Agent({ keepAlive: true, maxSockets: batchSize }),
      open: new http.Agent({ keepAlive: true, maxSockets: batchSize }),
    };
    let versions: Map<string, number>;

    beforeAll(async () => {
      ledger = await store.open();
      versions = await seed(ledger);
      const tokens = parseTokens(
        JSON.stringify({
          [appendToken]: ['append'],
          [readToken]: ['read'],
          [adminToken]: ['admin'],
        }),
      );
      for (const kind of ['secured', 'open'] as const) {
        const app = await createServer({
          ledger,
          ...(kind === 'secured' ? { tokens } : {}),
          bodyLimitBytes: 256 * 1024,
        });
        await app.listen({ host: '127.0.0.1', port: 0 });
        servers.set(kind, { app, port: (app.server.address() as AddressInfo).port });
      }
    });
    afterAll(async () => {
      agents.secured.destroy();
      agents.open.destroy();
      for (const { app } of servers.values()) await app.close();
      await ledger?.close();
      await store.cleanup();
    });

    it(
      `answers ${probesPerStore[store.name].toLocaleString('en')} generated bad requests with no 5xx, and changes nothing`,
      { timeout: 240_000 },
      async () => {
        const before = await snapshotOf(ledger);
        let baseline = before;
        const failures: string[] = [];
        const statuses = new Map<number, number>();
        const timeByKind = new Map<string, { count: number; ms: number }>();
        let staleRetries = 0;
        let sent = 0;
        const send = async (one: Probe): Promise<string | null> => {
          const { port } = servers.get(one.server)!;
          const sentAt = performance.now();
          let answer =
            one.raw === undefined
              ? await sendHttp(agents[one.server], port, one)
              : await sendRaw(port, one);
          if (answer.staleSocket) {
            staleRetries += 1;
            answer = await sendHttp(agents[one.server], port, one);
          }
          sent += 1;
          const took = timeByKind.get(one.kind) ?? { count: 0, ms: 0 };
          took.count += 1;
          took.ms += performance.now() - sentAt;
          timeByKind.set(one.kind, took);
          if (answer.status !== undefined) {
            statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
          }
          let wrong: string | null = null;
          if (answer.error !== undefined && answer.status === undefined) wrong = answer.error;
          else if (answer.status! >= 500) wrong = `status ${answer.status}`;
          else if (answer.contentType?.startsWith('text/event-stream')) {
            wrong = `status ${answer.status}: an event stream opened for a request meant to be refused`;
          }
          if (wrong === null) return null;
          return `${wrong} for ${describeProbe(one)}${answer.body ? `\n    answer: ${answer.body}` : ''}`;
        };

        const seed = process.env.BAD_INPUT_SEED ? Number(process.env.BAD_INPUT_SEED) : undefined;
        const path = process.env.BAD_INPUT_PATH;
        const numRuns = Math.ceil(probesPerStore[store.name] / batchSize);
        const started = performance.now();
        await fc.assert(
          fc.asyncProperty(
            fc
              .array(builders(versions), { minLength: batchSize, maxLength: batchSize })
              .map(toBatch),
            async (batch) => {
              const wrong = (await Promise.all(batch.probes.map(send))).filter(
                (line): line is string => line !== null,
              );
              const now = await snapshotOf(ledger);
              if (JSON.stringify(now) !== JSON.stringify(baseline)) {
                wrong.push(
                  `the log changed: ${JSON.stringify(baseline)} became ${JSON.stringify(now)}; new: ${await eventsAfter(ledger, baseline.events?.last ?? '0')}`,
                );
                baseline = now;
              }
              batch.failures.push(...wrong);
              failures.push(...wrong);
              if (wrong.length > 0 && !keepGoing) {
                throw new Error(`${wrong.length} bad answers:\n  ${wrong.join('\n  ')}`);
              }
            },
          ),
          {
            numRuns,
            endOnFailure: true,
            ...(seed === undefined ? {} : { seed }),
            ...(path === undefined ? {} : { path }),
          },
        );
        const seconds = (performance.now() - started) / 1_000;
        const perKind = [...timeByKind]
          .map(([kind, took]) => `${kind} ${took.count} × ${(took.ms / took.count).toFixed(1)} ms`)
          .join(', ');
        console.info(
          `${store.name}: ${sent} bad requests in ${seconds.toFixed(1)} s (${staleRetries} sent again after a stale keep-alive socket); statuses ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}; ${perKind}`,
        );
        expect(failures).toEqual([]);
        expect(sent).toBeGreaterThanOrEqual(probesPerStore[store.name]);
        expect(await snapshotOf(ledger)).toEqual(before);
      },
    );
  });
}

/** The causes below the HTTP layer of 500s this suite found, each checked where it was. */
describe('bad input below the HTTP layer', () => {
  const nested = (depth: number) => {
    let value: unknown = 1;
    for (let level = 0; level < depth; level++) value = level % 2 ? { a: value } : [value];
    return value;
  };

  it('refuses cursors past the range of a transaction id or a position, as bad input', () => {
    for (const text of [
      '99999999999999999999:1',
      '18446744073709551616:0',
      '0:9223372036854775808',
    ]) {
      expect(() => parseLogCursor(text), text).toThrow(InvalidInputError);
    }
    expect(parseLogCursor('18446744073709551615:9223372036854775807')).toEqual({
      transactionId: 2n ** 64n - 1n,
      position: 2n ** 63n - 1n,
    });
  });

  it('bounds the nesting of JSON fields, so that a deep value is refused and not a stack overflow', () => {
    expect(jsonValue.safeParse(nested(limits.jsonDepth)).success).toBe(true);
    const tooDeep = jsonValue.safeParse(nested(limits.jsonDepth + 1));
    expect(tooDeep.error?.issues[0]?.message).toMatch(/^Too deep: expected arrays and objects/);
    expect(jsonValue.safeParse(nested(20_000)).success).toBe(false);
    for (const event of [
      { type: 'x.deep', data: nested(3_000) },
      { type: 'checkpoint.saved', data: { cursor: nested(3_000) } },
    ]) {
      expect(() => prepareEvents([event], 'events', new Date()), event.type).toThrow(
        InvalidEventError,
      );
    }
  });

  it('refuses timeline filters PostgreSQL cannot compare, and cursors past a position', async () => {
    const ledger = await openLedger({ dataDir: 'memory://' });
    try {
      for (const query of [
        { text: 'a\u0000b' },
        { text: 'x\ud800' },
        { jobId: 'job\u0000' },
        { types: ['item.completed', 'x.\u0000'] },
        { cursor: '99999999999999999999' },
        { cursor: '9223372036854775808' },
        // Year 0 passes ISO 8601 but not PostgreSQL's timestamptz.
        { since: '0000-01-01T00:00:00Z' },
        { until: '+010000-01-01T00:00:00Z' },
      ]) {
        await expect(ledger.timeline(query), JSON.stringify(query)).rejects.toThrow(
          InvalidInputError,
        );
      }
      expect(await ledger.timeline({ cursor: '9223372036854775807' })).toEqual({
        events: [],
        nextCursor: null,
      });
      await expect(ledger.readAll({ after: '1:99999999999999999999' })).rejects.toThrow(
        InvalidInputError,
      );
    } finally {
      await ledger.close();
    }
  });
});
