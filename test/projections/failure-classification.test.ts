import { describe, expect, it } from 'vitest';
import type { EventInput } from '../../schema/events.ts';
import {
  classifyFailure,
  classifyRecordedError,
  describeError,
} from '../../projections/failure-classification.ts';
import { failureGroups, jobFailures, retryCandidates } from '../../projections/job-failures.ts';
import { fold } from '../../projections/projection.ts';
import { record } from '../arbitraries.ts';
import { failureMessages as cases } from '../fixtures/failure-messages.ts';
import type { Expected } from '../fixtures/failure-messages.ts';

describe('classification of message text', () => {
  it('has many real messages from every source', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
    expect(new Set(cases.map(([source]) => source))).toEqual(
      new Set(['node', 'python', 'elixir', 'go', 'curl', 'tar', 'unzip', 'ssh', 's3', 'api']),
    );
  });

  it.each(cases)('%s: %s', (_source, message, [category, retryable]) => {
    expect(classifyFailure({ message })).toEqual({ category, retryable });
    expect(classifyRecordedError({ message })).toEqual({ category, retryable });
  });

  it('agrees with the failures projection fed recorded item.failed events', () => {
    const events: EventInput[] = [
      { type: 'job.started', data: { name: 'crawl', kind: 'crawl', project: 'web' } },
      ...cases.map(([, message], index): EventInput => ({
        type: 'item.failed',
        data: { itemId: `item-${index}`, error: { message } },
      })),
    ];
    const state = fold(jobFailures, record(events.map((event) => ({ streamId: 'job-1', event }))));
    const byItem = new Map<string, Expected>();
    for (const group of failureGroups(state)) {
      for (const itemId of group.itemIds) {
        byItem.set(itemId, [group.category, group.count === group.retryable]);
        // Within a group every failure classifies alike: all retryable or none.
        expect([0, group.count]).toContain(group.retryable);
      }
    }
    const candidates = new Set(retryCandidates(state).map((candidate) => candidate.itemId));
    cases.forEach(([, message, [category, retryable]], index) => {
      const itemId = `item-${index}`;
      expect({ message, result: byItem.get(itemId) }).toEqual({
        message,
        result: [category, retryable],
      });
      expect({ message, candidate: candidates.has(itemId) }).toEqual({
        message,
        candidate: retryable,
      });
    });
  });
});

describe('precedence', () => {
  it('lets structured facts win over the message text', () => {
    expect(classifyFailure({ message: 'HTTP 503 Service Unavailable', code: 'ENOSPC' })).toEqual({
      category: 'output',
      retryable: false,
    });
    expect(classifyFailure({ message: 'timed out', status: 401 })).toEqual({
      category: 'auth',
      retryable: false,
    });
    expect(classifyFailure({ message: 'invalid token', name: 'SyntaxError' })).toEqual({
      category: 'extraction',
      retryable: false,
    });
    // A code no rule knows leaves the text to decide.
    expect(classifyFailure({ message: 'HTTP 503', code: 'E1' })).toEqual({
      category: 'network',
      retryable: true,
    });
  });

  it('lets the producer’s category, retryable word and rules win over the text', () => {
    expect(classifyFailure({ message: 'HTTP 503', category: 'analysis' })).toEqual({
      category: 'analysis',
      retryable: false,
    });
    expect(classifyFailure({ message: 'read ECONNRESET', retryable: false })).toEqual({
      category: 'network',
      retryable: false,
    });
    expect(classifyFailure({ message: 'tar: Unexpected EOF in archive', retryable: true })).toEqual(
      { category: 'extraction', retryable: true },
    );
    const rules = [
      { match: { messagePattern: String.raw`\bcaptcha\b` }, category: 'auth', retryable: true },
      { match: { messagePattern: 'unexpected EOF' }, category: 'network' },
    ];
    expect(classifyFailure({ message: 'HTTP 503: captcha required' }, rules)).toEqual({
      category: 'auth',
      retryable: true,
    });
    expect(classifyFailure({ message: 'unexpected EOF' }, rules)).toEqual({
      category: 'network',
      retryable: true,
    });
    // not_applicable is never retried, whatever the producer says.
    expect(classifyFailure({ message: '404 Not Found', retryable: true })).toEqual({
      category: 'not_applicable',
      retryable: false,
    });
  });

  it('treats an invalid producer pattern as matching nothing', () => {
    expect(
      classifyFailure({ message: 'HTTP 503' }, [
        { match: { messagePattern: '(' }, category: 'auth' },
      ]),
    ).toEqual({
      category: 'network',
      retryable: true,
    });
  });

  it('classifies a thrown error whose code sits only in its message', () => {
    expect(describeError(new Error("EACCES: permission denied, open '/out/x.ttl'"))).toMatchObject({
      code: 'EACCES',
      category: 'output',
      retryable: false,
    });
    expect(describeError('curl: (6) Could not resolve host: x.example.org')).toMatchObject({
      category: 'network',
      retryable: true,
    });
  });

  it('does not read numbers that are no HTTP status as one', () => {
    for (const message of [
      'processed 503 items',
      'exit status 1',
      'row 404 has 3 columns',
      'port 5000 in use',
    ]) {
      expect(classifyFailure({ message })).toEqual({ category: 'unknown', retryable: false });
    }
  });
});
