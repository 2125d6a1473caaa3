import { NotFoundError } from '../../errors.ts';
import type { App } from '../app.ts';
import { readScope } from '../hooks.ts';
import * as schemas from '../schemas.ts';
import { defined } from './common.ts';

/** Views across jobs: a project's jobs and totals, and stage durations. */
export function projectRoutes(app: App): void {
  app.get(
    '/v1/projects/:project/progress',
    {
      config: readScope,
      schema: {
        params: schemas.projectParams,
        querystring: schemas.projectProgressQuery,
        summary: "A project's jobs and their totals ('all': every project)",
      },
    },
    async (request) => {
      const { project } = request.params;
      const { active, operationId, parentJobId } = request.query;
      const within = project === 'all' ? {} : { project };
      if (operationId !== undefined) {
        // One job: the same answer, narrowed to it; 404 when the project does not hold it.
        const [job] = await request.reads.jobs({ ...within, jobId: operationId, limit: 1 });
        if (!job) {
          throw new NotFoundError(
            project === 'all'
              ? `Job '${operationId}'`
              : `Job '${operationId}' in project '${project}'`,
          );
        }
      }
      const [projects, jobs] = await Promise.all([
        request.reads.projectOverview(defined({ active, jobId: operationId })),
        request.reads.jobs({
          ...defined({ active, parentJobId, jobId: operationId }),
          ...within,
          limit: 1_000,
        }),
      ]);
      return {
        project,
        projects: project === 'all' ? projects : projects.filter((row) => row.project === project),
        jobs,
      };
    },
  );

  app.get(
    '/v1/metrics/stages',
    {
      config: readScope,
      schema: { querystring: schemas.stageMetricsQuery, summary: 'Stage durations across jobs' },
    },
    async (request) => ({ stages: await request.reads.stageMetrics(defined(request.query)) }),
  );
}
