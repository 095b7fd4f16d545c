// Lint (part of `npm run lint`): the product and its tests must not name a place outside the repository.
// Fails on, in every text file under the folders below:
//   - `../shared` (the data folder beside a development checkout);
//   - an absolute path of two or more segments whose first segment is not a standard Linux top-level
//     folder (FHS: bin boot dev etc lib lib64 opt proc run sbin sys tmp usr var), e.g. /work/..., /home/...,
//     /srv/..., /mnt/..., /Users/.... Such paths name one machine's folders; the code finds its files
//     through runtime/paths.ts, os.tmpdir() and FACEGATE_DATA instead.
// Not affected: system locations the product uses on any Linux machine (/dev/video0, /dev/null,
// /proc/self/..., /etc/facegate/..., /var/lib/facegate, /usr/bin/env, /tmp/...); URLs (`scheme://host/x`);
// JSON pointers (`#/definitions/x`); regex literals (`/x/g`); /nonexistent/..., which names a path that
// exists nowhere so tests can check the error for a missing file; and /api/..., the local page's HTTP routes
// (runtime/web), which are URLs on the device, not folders.
//   npx tsx tools/lint/no-outside-paths.ts   (exit 1 and one line per finding: file:line: text)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PACKAGE_ROOT } from '../../runtime/paths.ts';

export const CHECKED_FOLDERS = [
  'runtime',
  'tools',
  'test',
  'kernels',
  'training',
  'configs',
  'firmware-scripts',
  'bin',
];
const SKIPPED_FOLDERS = new Set(['node_modules', 'build', '__pycache__']);
const BINARY = /\.(png|jpe?g|mp4|mjpeg|rgb|bin|node|o|a|so)$/i;

const FHS_ROOTS = 'bin|boot|dev|etc|lib|lib64|opt|proc|run|sbin|sys|tmp|usr|var';
// A `/` that starts a path (not inside a word, a URL, a relative path, a JSON pointer, an escape, a
// placeholder such as `<dataDir>/x` or a quoted shell variable such as `"$src"/x`), then two segments,
// the first outside the FHS roots and not `nonexistent`.
const ABSOLUTE = new RegExp(
  `(?<![\\w.:/~$}#>\\\\-])(?<!\\$\\{?\\w+\\}?")/(?!(?:${FHS_ROOTS}|nonexistent|api)/)[A-Za-z_][\\w.-]*(?:/[\\w.-]+)+`,
  'g',
);
/** `/x/g`, `/x/i.test(...)`: a regex literal with flags, not a path. */
const REGEX_LITERAL = /^\/[^/]+\/[dgimsuy]+(?:\.\w+)?$/;
/** The rule's own source and test spell out what it catches. */
const EXEMPT = new Set(['tools/lint/no-outside-paths.ts', 'test/unit/lint/no-outside-paths.test.ts']);

export interface Finding {
  file: string;
  line: number;
  text: string;
}

export function findOutsidePaths(text: string, file: string): Finding[] {
  const findings: Finding[] = [];
  text.split('\n').forEach((line, i) => {
    const hits = [...line.matchAll(ABSOLUTE)].map((m) => m[0]).filter((hit) => !REGEX_LITERAL.test(hit));
    if (line.includes('../shared')) hits.push('../shared');
    for (const hit of hits) findings.push({ file, line: i + 1, text: hit });
  });
  return findings;
}

function textFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return SKIPPED_FOLDERS.has(name) ? [] : textFiles(path);
      return BINARY.test(name) ? [] : [path];
    });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const findings = CHECKED_FOLDERS.flatMap((folder) => textFiles(join(PACKAGE_ROOT, folder)))
    .map((path) => relative(PACKAGE_ROOT, path))
    .filter((file) => !EXEMPT.has(file))
    .flatMap((file) => findOutsidePaths(readFileSync(join(PACKAGE_ROOT, file), 'utf8'), file));
  for (const f of findings)
    console.error(
      `${f.file}:${f.line}: ${f.text}: a path outside the repository (tools/lint/no-outside-paths.ts)`,
    );
  if (findings.length > 0) process.exitCode = 1;
}
