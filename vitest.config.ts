import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // PGlite instances are memory-hungry; two workers fit a 2-core machine.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: 'main',
          include: ['test/**/*.test.ts'],
          exclude: ['test/faults/**', 'test/topology/**'],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        // Fault drills black-hole and terminate connections on the shared server; an open
        // transaction of theirs holds every gap-safe reader back, so they run after the rest.
        test: {
          name: 'faults',
          include: ['test/faults/**/*.test.ts'],
          sequence: { groupOrder: 1 },
        },
      },
      {
        extends: true,
        // Several servers, HAProxy and PgBouncer under load: last, so their load does not slow
        // the rest, and after the drills, whose open transactions hold gap-safe readers back.
        test: {
          name: 'topology',
          include: ['test/topology/**/*.test.ts'],
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
