// Dependencies between runtime/ folders point one way, down the data flow (README, "Layout"): a folder
// never imports, even for a type, a folder that imports it back. Each file directly in runtime/ (app.ts,
// paths.ts, types.ts, ...) counts as a folder of its own.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../helpers/paths.ts';

const RUNTIME = join(REPO_ROOT, 'runtime');
const IMPORT =
  /(?:^|[\s;])(?:import|export)\b[^'"]*?\bfrom\s*['"](\.[^'"]+)['"]|\bimport\s*\(\s*['"](\.[^'"]+)['"]\s*\)|^import\s*['"](\.[^'"]+)['"]/gm;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** The folder of runtime/ a file belongs to: its first path segment below runtime/. */
function folderOf(file: string): string {
  return relative(RUNTIME, file).split(sep)[0];
}

/** folder -> folders it imports, each edge with one import that makes it (`from.ts -> to.ts`). */
type FolderGraph = Map<string, Map<string, string>>;

function runtimeFolderGraph(): FolderGraph {
  const graph: FolderGraph = new Map();
  for (const file of sources(RUNTIME)) {
    const from = folderOf(file);
    const edges = graph.get(from) ?? new Map<string, string>();
    graph.set(from, edges);
    for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const target = resolve(dirname(file), m[1] ?? m[2] ?? m[3]);
      if (!target.startsWith(`${RUNTIME}${sep}`)) continue;
      const to = folderOf(target);
      if (to !== from && !edges.has(to))
        edges.set(to, `${relative(REPO_ROOT, file)} -> ${relative(REPO_ROOT, target)}`);
    }
  }
  return graph;
}

/**
 * Every cycle's folders, one line each: `a -> b -> a` followed by the import behind each step. One
 * cycle per strongly connected group of folders (Tarjan), so a tangle is named once, not in all its loops.
 */
function folderCycles(graph: FolderGraph): string[] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const groups: string[][] = [];
  const visit = (node: string) => {
    index.set(node, index.size);
    low.set(node, index.get(node) as number);
    stack.push(node);
    for (const next of graph.get(node)?.keys() ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node) as number, low.get(next) as number));
      } else if (stack.includes(next)) {
        low.set(node, Math.min(low.get(node) as number, index.get(next) as number));
      }
    }
    if (low.get(node) === index.get(node)) {
      const group: string[] = [];
      let member: string;
      do {
        member = stack.pop() as string;
        group.push(member);
      } while (member !== node);
      if (group.length > 1) groups.push(group);
    }
  };
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) visit(node);
  return groups.map((group) => {
    // A shortest way back to the group's first folder, by breadth-first search inside the group.
    const start = group.sort()[0];
    const cameFrom = new Map<string, string>();
    const queue = [start];
    let last = '';
    while (queue.length > 0 && !last) {
      const node = queue.shift() as string;
      for (const next of graph.get(node)?.keys() ?? []) {
        if (!group.includes(next)) continue;
        if (next === start) {
          last = node;
          break;
        }
        if (!cameFrom.has(next)) {
          cameFrom.set(next, node);
          queue.push(next);
        }
      }
    }
    const path = [last];
    while (path[0] !== start) path.unshift(cameFrom.get(path[0]) as string);
    path.push(start);
    const steps = path.slice(1).map((to, i) => graph.get(path[i])?.get(to));
    return `${path.join(' -> ')} (${steps.join('; ')})`;
  });
}

describe('folderCycles', () => {
  const graph = (edges: Record<string, string[]>): FolderGraph =>
    new Map(
      Object.entries(edges).map(([from, tos]) => [
        from,
        new Map(tos.map((to) => [to, `${from}.ts -> ${to}.ts`])),
      ]),
    );

  it('names a cycle with the imports that make it', () => {
    expect(folderCycles(graph({ a: ['b'], b: ['c'], c: ['a', 'd'], d: [] }))).toEqual([
      'a -> b -> c -> a (a.ts -> b.ts; b.ts -> c.ts; c.ts -> a.ts)',
    ]);
  });

  it('finds none in a graph that only points down', () => {
    expect(folderCycles(graph({ a: ['b', 'c'], b: ['c'], c: [] }))).toEqual([]);
  });
});

describe('runtime/ folders', () => {
  it('import each other without a cycle', () => {
    expect(folderCycles(runtimeFolderGraph())).toEqual([]);
  });
});
