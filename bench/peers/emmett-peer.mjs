// The Emmett side of `npm run bench -- --peers`, in a process of its own: Emmett's store
// replaces pg's type parsers for its whole process. It runs the workloads the parent asks
// for over IPC, through Emmett's public API only, on the same generated events as Headway.
// Started with `--import tsx` so that it shares the event generator and the fold.
import { performance } from 'node:perf_hooks';
import { STREAM_DOES_NOT_EXIST } from '@event-driven-io/emmett';
import { getPostgreSQLEventStore } from '@event-driven-io/emmett-postgresql';
import { jobEvents, jobIds } from '../generate-events.ts';
import { peerEvolve, peerInitial } from '../peer-evolve.ts';
import { perSecond, sequentialLatency } from '../stats.ts';

const store = getPostgreSQLEventStore(process.env.PEER_DATABASE_URL);

/** Emmett's events carry a type and data; Headway's ids and times are left out. */
const toMessage = (event) => ({ type: event.type, data: event.data });

const workloads = {
  async batch({ prefix, streams, eventsPerStream }) {
    const batches = jobIds(prefix, streams).map((id) => ({
      id,
      events: jobEvents(id, eventsPerStream).map(toMessage),
    }));
    const started = performance.now();
    for (const batch of batches) {
      await store.appendToStream(batch.id, batch.events, {
        expectedStreamVersion: STREAM_DOES_NOT_EXIST,
      });
    }
    return { perSec: perSecond(streams * eventsPerStream, performance.now() - started) };
  },

  async single({ prefix, events: count }) {
    const [id] = jobIds(prefix, 1);
    const events = jobEvents(id, count).map(toMessage);
    let version = STREAM_DOES_NOT_EXIST;
    const figures = await sequentialLatency(count, async (index) => {
      const result = await store.appendToStream(id, [events[index]], {
        expectedStreamVersion: version,
      });
      version = result.nextExpectedStreamVersion;
    });
    return figures;
  },

  async readStream({ prefix, streams }) {
    let events = 0;
    const started = performance.now();
    for (const id of jobIds(prefix, streams)) {
      const { events: read } = await store.readStream(id);
      events += read.length;
    }
    return { perSec: perSecond(events, performance.now() - started), events };
  },

  async fold({ prefix, streams }) {
    let events = 0;
    const started = performance.now();
    for (const id of jobIds(prefix, streams)) {
      const { state } = await store.aggregateStream(id, {
        evolve: peerEvolve,
        initialState: peerInitial,
      });
      events += state.events;
    }
    return { perSec: perSecond(events, performance.now() - started), events };
  },

  async close() {
    await store.close();
    return null;
  },
};

process.on('message', (request) => {
  workloads[request.workload](request).then(
    (result) => {
      process.send({ result });
      if (request.workload === 'close') process.disconnect();
    },
    (error) => process.send({ error: error instanceof Error ? error.stack : String(error) }),
  );
});
