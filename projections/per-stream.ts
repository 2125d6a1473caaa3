import type { RecordedEvent } from '../schema/recorded-event.ts';
import { accumulatorFor } from './projection.ts';
import type { Accumulator, Projection } from './projection.ts';
import { own, setOwn } from './own.ts';

/** One state per stream (job id), for folding a log that interleaves many jobs. */
export type PerStreamState<S> = Record<string, S>;

/**
 * Runs a one-job projection over a log of many jobs, keeping one state per stream.
 *
 * @example
 * const { state } = await ledger.replay(perStream(jobProgress));
 * state['job-1']?.percent;
 */
export function perStream<S>(projection: Projection<S>): Projection<PerStreamState<S>> {
  return {
    name: `per-stream:${projection.name}`,
    version: projection.version,
    initial: () => ({}),
    evolve(states, event) {
      const current = own(states, event.streamId) ?? projection.initial();
      const next = projection.evolve(current, event);
      if (next === current && Object.hasOwn(states, event.streamId)) return states;
      const copy = { ...states };
      setOwn(copy, event.streamId, next);
      return copy;
    },
    accumulate(states) {
      const parts = new Map<string, Accumulator<S>>();
      for (const [streamId, state] of Object.entries(states)) {
        parts.set(streamId, accumulatorFor(projection, state));
      }
      // Logs come in runs of one stream: comparing with the last id is cheaper than hashing.
      let lastId: string | undefined;
      let last: Accumulator<S> | undefined;
      return {
        add(event: RecordedEvent) {
          if (event.streamId !== lastId || !last) {
            lastId = event.streamId;
            last = parts.get(lastId);
            if (!last) {
              last = accumulatorFor(projection);
              parts.set(lastId, last);
            }
          }
          last.add(event);
        },
        result() {
          const out: PerStreamState<S> = {};
          for (const [streamId, part] of parts) setOwn(out, streamId, part.result());
          return out;
        },
      };
    },
  };
}
