import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { limits } from '../schema/limits.ts';
import { HeadwayError } from '../src/errors.ts';
import type { Ledger } from '../src/ledger.ts';
import { openLedger } from '../src/open-ledger.ts';

const valid = { type: 'item.completed' as const, data: { itemId: 'a', durationMs: 5 } };

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
        "events[0].type: expected a catalogued type (job.started, job.scope_changed, items.planned, stage.started, item.started, item.completed, item.failed, item.skipped, items.released, progress.reported, checkpoint.saved, log.written, job.paused, job.resumed, job.completed, job.failed, job.cancelled) or x.<name>, received "job.begun"",
        "events[0].data.itemId: Invalid input: expected string, received number",
        "events[0].data.project: Invalid input: expected string, received undefined",
        "streamId: Too small: expected string to have >=1 characters",
        "expectedVersion: expected 'any', 'no_stream', 'stream_exists' or a version number >= 0, received -2",
      ]
    `);
  });
});
