import { describe, expect, it } from 'vitest';
import { defaultConditionSettings } from '../projections/job-conditions.ts';
import { jobEta } from '../projections/job-eta.ts';
import type { JobEtaState } from '../projections/job-eta.ts';
import { fold } from '../projections/projection.ts';
import { FoldCache } from '../src/fold-cache.ts';
import { openLedger } from '../src/open-ledger.ts';
import { readJobState } from '../src/queries/job-state.ts';
import type { JobViewsContext } from '../src/queries/job-state.ts';
import { LogReader } from '../src/store/log-reads.ts';
import type { EventRow } from '../src/store/recorded-row.ts';
import { deepFreeze } from './arbitraries.ts';

/** A log reader that counts the rows it turns into events: what a read folded. */
class CountingLogReader extends LogReader {
  decoded = 0;
  override toEvent(row: EventRow) {
    this.decoded += 1;
    return super.toEvent(row);
  }
}

describe("a job's state while the runner lags", () => {
  it('starts each read from the last read, and answers what a fold of the whole stream gives', async () => {
    const ledger = await openLedger({ dataDir: 'memory://' });
    try {
      const job = ledger.job('lagging');
      await job.start({ name: 'lagging', kind: 'crawl', project: 'reads', total: 30 });
      // The runner's state stays at the job's start: a runner that fell behind.
      const runnerState = deepFreeze(fold(jobEta, await ledger.readStream('lagging')));
      const readFolds = new FoldCache(4);
      const log = new CountingLogReader(ledger.db, new Map());
      const context: JobViewsContext = {
        log,
        cachedState: (jobId) => (jobId === 'lagging' ? runnerState : undefined),
        conditionSettings: defaultConditionSettings,
        readFolds,
      };
      let previous: JobEtaState = runnerState;
      for (let round = 0; round < 3; round += 1) {
        for (let item = 0; item < 5; item += 1) {
          await job.itemStarted(`i${round}-${item}`);
          await job.itemCompleted(`i${round}-${item}`);
        }
        log.decoded = 0;
        const { state } = await readJobState(context, 'lagging', [], false);
        // Only the ten events appended since the read before, however far the runner is.
        expect(log.decoded).toBe(10);
        const whole = fold(jobEta, await ledger.readStream('lagging'));
        expect(state).toEqual(whole);
        // What the next read starts from: this read's whole state, items included, newer
        // than the runner's and the previous read's.
        const kept = readFolds.get(jobEta, 'lagging')!.state;
        expect(kept).toEqual(whole);
        expect(kept.progress.version).toBeGreaterThan(previous.progress.version);
        previous = deepFreeze(kept);
      }
      // With nothing appended since, a read answers the kept state as it is.
      const { state } = await readJobState(context, 'lagging', [], false);
      expect(state).toEqual(previous);
    } finally {
      await ledger.close();
    }
  });
});
