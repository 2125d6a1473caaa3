import { isCustomEvent } from '../schema/recorded-event.ts';
import type { JobStatus } from './job-progress.ts';
import type { Projection } from './projection.ts';
import { own } from './own.ts';

/** A job as the overview shows it. Counts are item results recorded (a retry counts again). */
export interface JobOverview {
  jobId: string;
  version: number;
  name: string | null;
  kind: string | null;
  project: string | null;
  status: JobStatus;
  total: number | null;
  completed: number;
  failed: number;
  skipped: number;
  startedAt: number | null;
  endedAt: number | null;
}

/** Every job in the log, by id. */
export interface ProjectOverviewState {
  jobs: Record<string, JobOverview>;
}

const blankJob = (jobId: string): JobOverview => ({
  jobId,
  version: 0,
  name: null,
  kind: null,
  project: null,
  status: 'pending',
  total: null,
  completed: 0,
  failed: 0,
  skipped: 0,
  startedAt: null,
  endedAt: null,
});

/** Jobs across the whole log, for per-project views. */
export const projectOverview: Projection<ProjectOverviewState> = {
  name: 'project-overview',
  version: 1,
  initial: () => ({ jobs: {} }),
  evolve(state, event) {
    const previous = own(state.jobs, event.streamId) ?? blankJob(event.streamId);
    if (event.version <= previous.version) return state;
    const job: JobOverview = { ...previous, version: event.version };
    const at = event.occurredAt.getTime();
    if (!isCustomEvent(event)) {
      switch (event.type) {
        case 'job.started':
          Object.assign(job, {
            name: event.data.name,
            kind: event.data.kind,
            project: event.data.project,
            status: 'running',
            startedAt: at,
            total: event.data.total ?? job.total,
          });
          break;
        case 'job.scope_changed':
          job.total = event.data.total;
          break;
        case 'progress.reported':
          job.total = event.data.total ?? job.total;
          break;
        case 'item.completed':
          job.completed += 1;
          break;
        case 'item.failed':
          job.failed += 1;
          break;
        case 'item.skipped':
          job.skipped += 1;
          break;
        case 'job.paused':
          job.status = 'paused';
          break;
        case 'job.resumed':
          job.status = 'running';
          break;
        case 'job.completed':
        case 'job.failed':
        case 'job.cancelled':
          job.status =
            event.type === 'job.completed'
              ? 'completed'
              : event.type === 'job.failed'
                ? 'failed'
                : 'cancelled';
          job.endedAt = at;
          break;
        case 'items.planned':
        case 'stage.started':
        case 'item.started':
        case 'items.released':
        case 'checkpoint.saved':
        case 'log.written':
          break;
      }
    }
    return { jobs: { ...state.jobs, [event.streamId]: job } };
  },
};

/** One project's jobs and totals. */
export interface ProjectSummary {
  project: string;
  jobs: JobOverview[];
  byStatus: Partial<Record<JobStatus, number>>;
  completed: number;
  failed: number;
  skipped: number;
}

/** Jobs grouped by project, newest first within each. */
export function projects(state: ProjectOverviewState): ProjectSummary[] {
  const byProject = new Map<string, ProjectSummary>();
  for (const job of Object.values(state.jobs)) {
    const name = job.project ?? '(none)';
    const summary = byProject.get(name) ?? {
      project: name,
      jobs: [],
      byStatus: {},
      completed: 0,
      failed: 0,
      skipped: 0,
    };
    summary.jobs.push(job);
    summary.byStatus[job.status] = (summary.byStatus[job.status] ?? 0) + 1;
    summary.completed += job.completed;
    summary.failed += job.failed;
    summary.skipped += job.skipped;
    byProject.set(name, summary);
  }
  for (const summary of byProject.values()) {
    summary.jobs.sort(
      (a, b) => (b.startedAt ?? 0) - (a.startedAt ?? 0) || a.jobId.localeCompare(b.jobId),
    );
  }
  return [...byProject.values()].sort((a, b) => a.project.localeCompare(b.project));
}
