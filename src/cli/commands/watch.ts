import type { Command } from 'commander';
import { map, Subscription } from 'rxjs';
import type { Observable } from 'rxjs';
import { jobEta } from '../../../projections/job-eta.ts';
import { NotFoundError } from '../../errors.ts';
import { parsePositiveInt } from '../arguments.ts';
import { abortOnSignals } from '../context.ts';
import { addServerOptions, withSource } from '../remote.ts';
import { localSnapshot, remoteSnapshots } from '../watch-snapshots.ts';
import type { Snapshot } from '../watch-snapshots.ts';
import { isFinished } from '../../../projections/job-status.ts';
import { BarsView, LinesView } from '../watch-views.ts';

interface WatchOptions {
  interval?: number;
}

/** `headway watch <job>`: live progress bars until the job ends or Ctrl-C. */
export function registerWatch(program: Command): void {
  addServerOptions(
    program
      .command('watch')
      .description("follow a job's progress live: overall and per stage, rate, ETA and failures")
      .argument('<job>', 'job id')
      .option(
        '--interval <ms>',
        'at most one update per this many ms (default 100 on a terminal, else 1000)',
        parsePositiveInt,
      ),
  ).action(async (jobId: string, options: WatchOptions, command: Command) => {
    await withSource(command, async (source) => {
      if (source.kind === 'server') {
        const { client } = source;
        return show(options, (interval, signal) =>
          remoteSnapshots(client, jobId, interval, signal),
        );
      }
      const { ledger } = source;
      if ((await ledger.status(jobId)) === null) throw new NotFoundError(`Job '${jobId}'`);
      await show(options, (interval) =>
        ledger
          .watchFold(jobId, jobEta, { throttleMs: interval })
          .pipe(map((state) => localSnapshot(state, ledger.conditionSettings))),
      );
    });
  });
}

/** Draws snapshots until the job ends, the source ends, or Ctrl-C. */
async function show(
  options: WatchOptions,
  source: (interval: number, signal: AbortSignal) => Observable<Snapshot>,
): Promise<void> {
  const tty = process.stdout.isTTY === true;
  const interval = options.interval ?? (tty ? 100 : 1_000);
  const view = tty ? new BarsView(interval) : new LinesView();
  const stop = abortOnSignals();
  const done = new AbortController();
  let last: Snapshot | null = null;
  try {
    await new Promise<void>((resolve, reject) => {
      // Closed by `finish`; a subscription added after that is ended at once.
      const subscription = new Subscription();
      const finish = () => {
        done.abort();
        subscription.unsubscribe();
        resolve();
      };
      subscription.add(
        source(interval, AbortSignal.any([stop.signal, done.signal])).subscribe({
          next: (snapshot) => {
            last = snapshot;
            view.render(snapshot, Date.now());
            if (isFinished(snapshot.progress.status)) finish();
          },
          error: reject,
          complete: finish,
        }),
      );
      stop.signal.addEventListener('abort', finish, { once: true });
    });
  } finally {
    view.stop(last);
    stop.dispose();
  }
}
