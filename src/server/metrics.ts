import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { conditionNames, isEventType } from '../../schema/events.ts';
import type { JobConditions } from '../../projections/job-conditions.ts';
import type { EventAppender } from '../append/job-recorder.ts';
import type { Ledger } from '../ledger.ts';
import { unfinishedStatuses } from '../../projections/job-status.ts';

/** The gauges of jobs in each condition, by project and kind. */
const conditionGauges = [
  ['headway_jobs_stalled', 'stalled', 'Running jobs silent past their stall threshold'],
  ['headway_jobs_at_risk', 'atRisk', 'Jobs whose ETA range ends past their deadline'],
  ['headway_jobs_late', 'late', 'Unfinished jobs past their deadline'],
  [
    'headway_jobs_failing',
    'failureRate',
    'Jobs whose recent failure rate is above their threshold',
  ],
] as const satisfies readonly (readonly [string, keyof JobConditions, string])[];

/**
 * `read`, called at most once per scrape: the gauges of one scrape share its answer. This
 * leans on prom-client starting every gauge's `collect` in the same tick of a scrape.
 */
function onePerScrape<T>(read: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | null = null;
  return () => {
    pending ??= read().finally(() => {
      // Cleared once this scrape's gauges have all asked.
      setTimeout(() => (pending = null), 0);
    });
    return pending;
  };
}

/**
 * The server's Prometheus metrics, in a registry of its own: appends by event type and
 * their latency, open streams, and, read at each scrape, projection lag and active jobs.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  private readonly appended: Counter<'type'>;
  private readonly appendSeconds: Histogram;

  constructor(ledger: Ledger, openStreams: () => number) {
    collectDefaultMetrics({ register: this.registry, prefix: 'headway_' });
    this.appended = new Counter({
      name: 'headway_events_appended_total',
      help: 'Events appended through this server, by type (custom x.* types as "custom")',
      labelNames: ['type'],
      registers: [this.registry],
    });
    this.appendSeconds = new Histogram({
      name: 'headway_append_duration_seconds',
      help: 'Time to store one append request, group commit included',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [this.registry],
    });
    new Gauge({
      name: 'headway_open_streams',
      help: 'Event streams (SSE and WebSocket) open now',
      registers: [this.registry],
      collect() {
        this.set(openStreams());
      },
    });
    new Gauge({
      name: 'headway_projection_lag_events',
      help: 'Events in the log that a persisted projection has not folded yet (counted to 1,000,000)',
      labelNames: ['projection'],
      registers: [this.registry],
      async collect() {
        for (const status of await ledger.projectionStatus()) {
          this.set({ projection: status.name }, status.lag.events);
        }
      },
    });
    if (ledger.hasReplica) {
      new Gauge({
        name: 'headway_replica_lag_seconds',
        help: "How far the read replica trails the primary: 0 once it has replayed the primary's WAL, else the time since its last replayed commit",
        registers: [this.registry],
        async collect() {
          this.set(((await ledger.replication())?.lagMs ?? 0) / 1_000);
        },
      });
      new Gauge({
        name: 'headway_replica_lag_bytes',
        help: 'WAL bytes the primary has written and the read replica not replayed yet',
        registers: [this.registry],
        async collect() {
          this.set((await ledger.replication())?.lagBytes ?? 0);
        },
      });
    }
    // One read of the jobs in a condition per scrape, shared by the four gauges.
    const inCondition = onePerScrape(() =>
      ledger.jobs({ condition: [...conditionNames], limit: 10_000 }),
    );
    for (const [name, field, help] of conditionGauges) {
      new Gauge({
        name,
        help,
        labelNames: ['project', 'kind'],
        registers: [this.registry],
        async collect() {
          const counts = new Map<string, { project: string; kind: string; jobs: number }>();
          for (const job of await inCondition()) {
            if (job.conditions[field] === null) continue;
            const labels = { project: job.progress.project ?? '', kind: job.progress.kind ?? '' };
            const key = JSON.stringify(labels);
            counts.set(key, { ...labels, jobs: (counts.get(key)?.jobs ?? 0) + 1 });
          }
          // Reset and set with no await between: an overlapping scrape cannot add to these.
          this.reset();
          for (const { jobs, ...labels } of counts.values()) this.set(labels, jobs);
        },
      });
    }
    new Gauge({
      name: 'headway_webhook_deliveries',
      help: 'Webhook deliveries by status: pending (including retries) and dead-lettered',
      labelNames: ['status'],
      registers: [this.registry],
      async collect() {
        const counts = await ledger.webhooks.deliveryCounts();
        this.set({ status: 'pending' }, counts.pending);
        this.set({ status: 'dead' }, counts.dead);
      },
    });
    new Gauge({
      name: 'headway_active_jobs',
      help: 'Jobs running, paused or pending',
      registers: [this.registry],
      async collect() {
        const jobs = await ledger.jobs({
          status: [...unfinishedStatuses],
          limit: 10_000,
        });
        this.set(jobs.length);
      },
    });
  }

  /** Counts one stored append and how long it took. */
  recordAppend(types: readonly string[], seconds: number): void {
    this.appendSeconds.observe(seconds);
    for (const type of types) this.appended.inc({ type: isEventType(type) ? type : 'custom' });
  }

  /** The text exposition format. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/**
 * The appender every append route writes through: `appender` (the group commit), each
 * stored append counted for `/metrics` with its event types and how long it took.
 */
export function meteredAppender(appender: EventAppender, metrics: ServerMetrics): EventAppender {
  return {
    async append(streamId, events, options) {
      const started = performance.now();
      const result = await appender.append(streamId, events, options);
      metrics.recordAppend(
        events.map((event) => event.type),
        (performance.now() - started) / 1_000,
      );
      return result;
    },
  };
}
