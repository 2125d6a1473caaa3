import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The modules a file loads when it runs: type-only imports and exports are left out. */
function runtimeSpecifiers(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      if (loadsAtRuntime(node.importClause)) found.push(node.moduleSpecifier.text);
    } else if (
      ts.isExportDeclaration(node) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      const elements =
        node.exportClause && ts.isNamedExports(node.exportClause)
          ? node.exportClause.elements
          : null;
      const typeOnly =
        node.isTypeOnly || (elements !== null && elements.every((element) => element.isTypeOnly));
      if (!typeOnly) found.push(node.moduleSpecifier.text);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      // A dynamic import loads at run time too, only later.
      found.push(node.arguments[0].text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/**
 * False for `import type …` and for imports whose every binding is `type`: tsx and vitest
 * (esbuild) erase those. A side-effect import (`import './x'`) loads.
 */
function loadsAtRuntime(clause: ts.ImportClause | undefined): boolean {
  if (!clause) return true;
  if (clause.isTypeOnly) return false;
  if (clause.name) return true;
  const bindings = clause.namedBindings;
  if (!bindings || ts.isNamespaceImport(bindings)) return true;
  return bindings.elements.length === 0 || bindings.elements.some((element) => !element.isTypeOnly);
}

/** `zod` of `zod/v4`, `@fastify/static` of `@fastify/static/x`. */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/**
 * Follows the run-time import graph of the repository's own sources from `entry`: the
 * files reached (relative to the root) and the packages they import by name.
 */
function runtimeGraph(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const pending = [resolve(root, entry)];
  while (pending.length > 0) {
    const file = pending.pop()!;
    const name = relative(root, file);
    if (files.has(name)) continue;
    files.add(name);
    for (const specifier of runtimeSpecifiers(file)) {
      if (specifier.startsWith('.')) {
        const target = resolve(dirname(file), specifier);
        if (!existsSync(target)) throw new Error(`${name}: cannot resolve '${specifier}'`);
        pending.push(target);
      } else if (!specifier.startsWith('node:')) {
        packages.add(packageName(specifier));
      }
    }
  }
  return { files, packages };
}

describe('headway/client', () => {
  const { files, packages } = runtimeGraph('src/client/index.ts');

  it('loads no database driver, ORM or server framework at run time', () => {
    const forbidden = [...packages].filter(
      (name) =>
        ['kysely', 'pg', '@electric-sql/pglite', 'fastify'].includes(name) ||
        name.startsWith('@fastify/'),
    );
    expect(forbidden).toEqual([]);
  });

  it('follows the real graph, so the check above cannot pass for want of imports', () => {
    expect(packages).toContain('zod');
    expect(packages).toContain('eventsource-parser');
    expect(files).toContain('src/client/client.ts');
    expect([...files].some((file) => file.startsWith('schema/'))).toBe(true);
    expect(files).toContain('src/append/prepare-streams.ts');
  });

  it('is a walk that does find the drivers where they are loaded', () => {
    const ledger = runtimeGraph('src/open-ledger.ts').packages;
    expect(ledger).toContain('kysely');
    expect(ledger).toContain('pg');
  });
});

describe('headway (the library entry)', () => {
  const { files, packages } = runtimeGraph('src/index.ts');

  it('loads no HTTP framework: the server is headway/server', () => {
    const server = [...packages].filter(
      (name) => name === 'fastify' || name.startsWith('@fastify/') || name === 'prom-client',
    );
    expect(server).toEqual([]);
    expect([...files].filter((file) => file.startsWith('src/server/'))).toEqual([]);
  });

  it('does load the store, so the walk reached the library', () => {
    expect(packages).toContain('kysely');
    expect(files).toContain('src/ledger.ts');
  });
});

describe('headway/server', () => {
  it('is where Fastify is loaded', () => {
    expect(runtimeGraph('src/server/index.ts').packages).toContain('fastify');
  });
});
