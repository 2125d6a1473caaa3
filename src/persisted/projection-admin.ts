import type { JobEtaState } from '../../projections/job-eta.ts';
import { formatLogCursor, logStart } from '../cursors.ts';
import { InvalidInputError } from '../errors.ts';
import type { LedgerStore } from '../store/ledger-store.ts';
import type { LogReader } from '../store/log-reads.ts';
import { expectedIssue } from '../validation.ts';
import { jobsProjection, persistedProjections } from './persisted-projection.ts';
import type { PersistedProjection } from './persisted-projection.ts';
import { ProjectionRunner } from './projection-runner.ts';
import type { ProjectionRunnerOptions, RunnerContext } from './projection-runner.ts';
import { readGenerations, startBuilding } from './projection-tables.ts';
import type { Generation } from './projection-tables.ts';

/** A persisted projection's generation and how many events it has yet to fold. */
export interface ProjectionStatus {
  name: string;
  /** The version of the projection's code in this process. */
  codeVersion: number;
  /** Null before the projection was ever run. */
  generation: Generation | null;
  lag: { events: number; capped: boolean };
}

/** A projection's status flat and JSON-friendly, as `headway projections` and `GET /v1/projections` show it. */
export interface ProjectionRow {
  name: string;
  codeVersion: number;
  /** Null before the projection was ever run. */
  generation: number | null;
  status: 'building' | 'active' | 'not built';
  /** The log cursor of its checkpoint. */
  cursor: string | null;
  events: number;
  lag: number;
  lagCapped: boolean;
  updatedAt: string | null;
}

/** A projection's status as a `ProjectionRow`. */
export function projectionRow(status: ProjectionStatus): ProjectionRow {
  const { generation } = status;
  return {
    name: status.name,
    codeVersion: status.codeVersion,
    generation: generation?.generation ?? null,
    status: generation?.status ?? 'not built',
    cursor: generation ? formatLogCursor(generation.cursor) : null,
    events: generation?.events ?? 0,
    lag: status.lag.events,
    lagCapped: status.lag.capped,
    updatedAt: generation?.updatedAt.toISOString() ?? null,
  };
}

/**
 * The persisted projections of one ledger: their runners in this process, catching up,
 * rebuilding into a new generation, and their status.
 */
export class PersistedProjections {
  private readonly runners = new Map<string, ProjectionRunner<unknown>>();

  constructor(
    private readonly store: LedgerStore,
    private readonly log: LogReader,
  ) {}

  /** A job's whole state as this process's `jobs` runner holds it, if it runs here. */
  cachedJobState(jobId: string): JobEtaState | undefined {
    return this.runners.get(jobsProjection.name)?.cachedState(jobId) as JobEtaState | undefined;
  }

  /** Runs every projection not yet running here, until the returned stop. */
  run(options: ProjectionRunnerOptions = {}): { stop(): Promise<void> } {
    const started: ProjectionRunner<unknown>[] = [];
    for (const definition of persistedProjections.values()) {
      if (this.runners.has(definition.name)) continue;
      const runner = this.runner(definition, options);
      this.runners.set(definition.name, runner);
      runner.start();
      started.push(runner);
    }
    return {
      stop: async () => {
        await Promise.all(started.map((runner) => runner.stop()));
        for (const runner of started) this.runners.delete(runner.definition.name);
      },
    };
  }

  /** Folds what the projections not running here have not seen; returns those it caught up. */
  async catchUp(options: ProjectionRunnerOptions = {}): Promise<string[]> {
    const done: string[] = [];
    for (const definition of persistedProjections.values()) {
      if (this.runners.has(definition.name)) continue;
      if (await this.runner(definition, options).catchUp()) done.push(definition.name);
    }
    return done;
  }

  /** Rebuilds projections (all, or the one named) into new generations, waiting until each serves. */
  async rebuild(name?: string, options: { timeoutMs?: number } = {}): Promise<Generation[]> {
    const definitions =
      name === undefined ? [...persistedProjections.values()] : [persistedProjection(name)];
    const deadline = Date.now() + (options.timeoutMs ?? 10 * 60_000);
    const built: Generation[] = [];
    for (const definition of definitions) {
      const building = await startBuilding(this.store.db, definition.name, definition.version);
      const local = this.runners.get(definition.name);
      if (local) local.wake();
      else await this.runner(definition).catchUp();
      built.push(await this.activeFrom(definition.name, building.generation, deadline));
    }
    return built;
  }

  /** Waits until a generation at or past `generation` is active, or the deadline passes. */
  private async activeFrom(name: string, generation: number, deadline: number) {
    for (;;) {
      const rows = await readGenerations(this.store.db, name);
      const active = rows.find((row) => row.status === 'active');
      if (active && active.generation >= generation) return active;
      if (Date.now() > deadline) {
        throw new Error(`Projection '${name}': the rebuild did not finish in time`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** Each projection's generations, checkpoints and how far they trail the log. */
  async status(): Promise<ProjectionStatus[]> {
    const generations = await readGenerations(this.store.db);
    const statuses: ProjectionStatus[] = [];
    for (const definition of persistedProjections.values()) {
      const rows = generations.filter((row) => row.projection === definition.name);
      const named = { name: definition.name, codeVersion: definition.version };
      if (rows.length === 0) {
        statuses.push({
          ...named,
          generation: null,
          lag: await this.log.countVisibleAfter(logStart),
        });
      }
      for (const row of rows) {
        statuses.push({
          ...named,
          generation: row,
          lag: await this.log.countVisibleAfter(row.cursor),
        });
      }
    }
    return statuses;
  }

  /** Stops every runner of this process. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.runners.values()].map((runner) => runner.stop()));
    this.runners.clear();
  }

  private runner(definition: PersistedProjection<unknown>, options?: ProjectionRunnerOptions) {
    const context: RunnerContext = {
      store: this.store,
      readPage: (after, limit) => this.log.readLog({ after, limit }, { gapSafe: true }),
    };
    return new ProjectionRunner(context, definition, options);
  }
}

function persistedProjection(name: string) {
  const definition = persistedProjections.get(name);
  if (!definition) {
    const names = [...persistedProjections.keys()].map((key) => JSON.stringify(key)).join(', ');
    throw new InvalidInputError([expectedIssue('projection', `one of ${names}`, name)]);
  }
  return definition;
}
