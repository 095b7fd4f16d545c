// The npm packages the pretrained weights come from, pinned in package.json.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

export interface SourcePackage {
  package: string;
  version: string;
  license: string;
  dir: string;
}

export function sourcePackage(name: string): SourcePackage {
  // Found through the module search path: these packages' `exports` hide their package.json.
  const pkgJson = (require.resolve.paths(name) ?? [])
    .map((p) => join(p, name, 'package.json'))
    .find(existsSync);
  if (!pkgJson)
    throw new Error(`npm package ${name} is not installed: run \`npm ci\` first (it is a devDependency)`);
  const pkg = JSON.parse(readFileSync(pkgJson, 'utf8')) as { version: string; license?: string };
  return { package: name, version: pkg.version, license: pkg.license ?? 'unknown', dir: dirname(pkgJson) };
}

export const FACE_API = '@vladmandic/face-api';
export const HUMAN = '@vladmandic/human';

export function sourceFile(src: SourcePackage, file: string): string {
  return join(src.dir, file);
}
