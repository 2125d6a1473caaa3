import type { RecordedEvent } from '../schema/recorded-event.ts';
import { accumulatorFor } from './projection.ts';
import type { Projection } from './projection.ts';

/** The state of a combined projection: one entry per part. */
export type CombinedState<P extends Record<string, Projection<unknown>>> = {
  [K in keyof P]: P[K] extends Projection<infer S> ? S : never;
};

/**
 * Runs several projections over one pass of the events.
 *
 * @example
 * const both = combineProjections({ progress: jobProgress, summary: jobSummary });
 * const { progress, summary } = await ledger.project(jobId, both);
 */
export function combineProjections<P extends Record<string, Projection<unknown>>>(
  parts: P,
): Projection<CombinedState<P>> {
  const entries = Object.entries(parts);
  return {
    name: entries.map(([key, part]) => `${key}:${part.name}`).join('+'),
    version: entries.reduce((sum, [, part]) => sum + part.version, 0),
    initial: () =>
      Object.fromEntries(entries.map(([key, part]) => [key, part.initial()])) as CombinedState<P>,
    evolve: (state: CombinedState<P>, event: RecordedEvent) => {
      const next: Record<string, unknown> = {};
      for (const [key, part] of entries) {
        next[key] = part.evolve((state as Record<string, unknown>)[key], event);
      }
      return next as CombinedState<P>;
    },
    accumulate(state) {
      const accumulators = entries.map(
        ([key, part]) =>
          [key, accumulatorFor(part, (state as Record<string, unknown>)[key])] as const,
      );
      return {
        add(event) {
          for (const [, accumulator] of accumulators) accumulator.add(event);
        },
        result: () =>
          Object.fromEntries(
            accumulators.map(([key, accumulator]) => [key, accumulator.result()]),
          ) as CombinedState<P>,
      };
    },
  };
}
