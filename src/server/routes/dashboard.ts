import fastifyStatic from '@fastify/static';
import type { App } from '../app.ts';
import { catalogueModule, dashboardRoot, vendored } from '../dashboard-assets.ts';

/**
 * The dashboard: its own files under `/dashboard/`, the browser modules it loads under
 * `/dashboard/vendor/<name>/`, the event catalogue as a module, and its pages.
 */
export async function dashboardRoutes(app: App): Promise<void> {
  await app.register(fastifyStatic, { root: dashboardRoot, prefix: '/dashboard/' });
  for (const [name, root] of vendored) {
    await app.register(fastifyStatic, {
      root,
      prefix: `/dashboard/vendor/${name}/`,
      decorateReply: false,
    });
  }
  // The event catalogue's types, for the timeline's filter, from the one definition.
  app.get('/dashboard/catalogue.js', { schema: { hide: true } }, (_request, reply) =>
    reply.type('text/javascript; charset=utf-8').send(catalogueModule),
  );
  // The dashboard's own addresses all load the same page, which shows what they name.
  for (const path of ['/', '/jobs/:id', '/projects/:project']) {
    app.get(path, { schema: { hide: true } }, (_request, reply) => reply.sendFile('index.html'));
  }
}
