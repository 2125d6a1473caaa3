/**
 * The small fold every peer runs in the "fold" workload: the same JavaScript over the same
 * events, so the figure compares reading a stream into a state, not two different reducers.
 */

/** What the shared fold keeps of a job. */
export interface PeerTally {
  events: number;
  succeeded: number;
  failed: number;
  lastType: string;
}

/** A fresh tally. */
export function peerInitial(): PeerTally {
  return { events: 0, succeeded: 0, failed: 0, lastType: '' };
}

/** One event into the tally; it reads only `type`, which every peer's events carry. */
export function peerEvolve(state: PeerTally, event: { type: string }): PeerTally {
  return {
    events: state.events + 1,
    succeeded: state.succeeded + (event.type === 'item.completed' ? 1 : 0),
    failed: state.failed + (event.type === 'item.failed' ? 1 : 0),
    lastType: event.type,
  };
}
