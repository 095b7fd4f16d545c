// The runtime reads models; the offline toolchain (tools/) makes them. Nothing the product runs may
// import the toolchain, so it ships and runs without it.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../helpers/paths.ts';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return /\.(ts|js|mjs)$/.test(name) ? [path] : [];
  });
}

describe('runtime/ and bin/', () => {
  it('never import tools/', () => {
    const tools = join(REPO_ROOT, 'tools');
    const offending = ['runtime', 'bin'].flatMap((folder) =>
      sources(join(REPO_ROOT, folder)).flatMap((file) =>
        [...readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*['"](\.[^'"]+)['"]/g)]
          .map((m) => resolve(dirname(file), m[1]))
          .filter((target) => target.startsWith(`${tools}/`))
          .map((target) => `${relative(REPO_ROOT, file)} -> ${relative(REPO_ROOT, target)}`),
      ),
    );
    expect(offending).toEqual([]);
  });
});
