import { setTimeout as sleep } from 'node:timers/promises';
import type { EventInput, FailureError } from '../../schema/events.ts';
import { classifyFailure } from '../../projections/failure-classification.ts';

// What the simulated workers do: the clock they keep, each item's outcome and the
// failures injected among them. Every draw comes from one seeded generator, in a fixed
// order, so a seed repeats a run exactly.

/**
 * The simulated time recorded events carry. As fast as it can, it runs ahead of the wall
 * clock; in real time, `keepTime` waits for it.
 */
export class SimulatedClock {
  now = Date.now();

  constructor(
    private readonly realTime: boolean,
    private readonly signal?: AbortSignal,
  ) {}

  /** The simulated now as ISO text, for `occurredAt`. */
  at(): string {
    return new Date(this.now).toISOString();
  }

  /**
   * In real time, waits until the simulated clock's now has come. Throws the signal's
   * reason once it aborts, so a stopping server does not wait for the run to end.
   */
  async keepTime(): Promise<void> {
    this.signal?.throwIfAborted();
    if (this.realTime) {
      await sleep(Math.max(0, this.now - Date.now()), undefined, {
        ...(this.signal ? { signal: this.signal } : {}),
      });
    }
  }
}

/** Failures the simulation draws from, across the default categories. */
const failureKinds: { weight: number; make: (itemId: string) => Error }[] = [
  {
    weight: 5,
    make: (id) =>
      withCode(new Error(`read ECONNRESET while fetching https://example.org/${id}`), 'ECONNRESET'),
  },
  {
    weight: 3,
    make: (id) => withCode(new Error(`connect ETIMEDOUT 10.2.0.7:443 (${id})`), 'ETIMEDOUT'),
  },
  {
    weight: 3,
    make: () => Object.assign(new Error('HTTP 503 Service Unavailable'), { status: 503 }),
  },
  {
    weight: 3,
    make: (id) => new SyntaxError(`Unexpected token < in JSON at position ${id.length * 7}`),
  },
  { weight: 1, make: () => Object.assign(new Error('HTTP 401 Unauthorized'), { status: 401 }) },
  {
    weight: 1,
    make: () => withCode(new Error('ENOSPC: no space left on device, write'), 'ENOSPC'),
  },
];

function withCode(error: Error, code: string): Error {
  return Object.assign(error, { code });
}

/** Draws each item's attempt, duration and outcome: completed, skipped, or a failure. */
export class ItemSimulator {
  private readonly attempts = new Map<string, number>();

  constructor(
    private readonly random: () => number,
    private readonly clock: SimulatedClock,
    private readonly workers: number,
    private readonly failRate: number,
  ) {}

  /** The item's next attempt number (1 the first time). */
  nextAttempt(itemId: string): number {
    const attempt = (this.attempts.get(itemId) ?? 0) + 1;
    this.attempts.set(itemId, attempt);
    return attempt;
  }

  /**
   * How one attempt ends, at the clock advanced by its share of the workers' time: a
   * failure with `failShare`, a skip now and then, else a completion.
   */
  outcome(itemId: string, failShare = this.failRate): EventInput {
    const durationMs = Math.round(40 + this.random() * this.random() * 860);
    this.clock.now += Math.round(durationMs / this.workers);
    const type = itemId.endsWith('7') ? 'pdf' : 'html';
    const draw = this.random();
    const occurredAt = this.clock.at();
    if (draw < failShare) {
      const error = this.pickFailure(itemId);
      return { type: 'item.failed', data: { itemId, type, durationMs, error }, occurredAt };
    }
    if (draw < failShare + 0.006) {
      return {
        type: 'item.skipped',
        data: { itemId, type, reason: 'robots.txt disallows this path' },
        occurredAt,
      };
    }
    return {
      type: 'item.completed',
      data: {
        itemId,
        type,
        durationMs,
        output: `s3://demo-index/${itemId}.json`,
        metrics: {
          bytes: Math.round(2_000 + this.random() * 80_000),
          links: Math.round(this.random() * 40),
        },
      },
      occurredAt,
    };
  }

  /** Injects a failure: one of `failureKinds` by weight, classified as the ledger would. */
  private pickFailure(itemId: string): FailureError {
    const totalWeight = failureKinds.reduce((sum, kind) => sum + kind.weight, 0);
    let draw = this.random() * totalWeight;
    const kind =
      failureKinds.find((candidate) => (draw -= candidate.weight) < 0) ?? failureKinds[0]!;
    const thrown = kind.make(itemId);
    const { category, retryable } = classifyFailure({
      message: thrown.message,
      name: thrown.name,
      ...('code' in thrown ? { code: String(thrown.code) } : {}),
      ...('status' in thrown ? { status: Number(thrown.status) } : {}),
    });
    return {
      message: thrown.message,
      category,
      retryable,
      stage: 'process',
      ...('code' in thrown ? { code: String(thrown.code) } : {}),
    };
  }
}
