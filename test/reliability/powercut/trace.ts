// Records what a workload does to its files: runs it under `strace -f` and turns the log into the
// file-system operations that matter for a power cut (opens, writes, truncates, fsyncs, renames,
// unlinks, mkdirs), in the order they completed, with the bytes written. The workload marks its own
// progress with mark(): an access() of a path under MARK_ROOT, which strace logs in line with the writes.
import { execFile } from 'node:child_process';
import { accessSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const MARK_ROOT = '/@facegate-mark/';

/** Called by a workload after a step whose result it would report (an append returned, a save finished). */
export function mark(label: string): void {
  try {
    accessSync(MARK_ROOT + label);
  } catch {
    // Expected: the path never exists; the call is only there to appear in the trace.
  }
}

export type TraceOp =
  | { kind: 'open'; path: string; fd: number; create: boolean; truncate: boolean; append: boolean }
  | { kind: 'write'; fd: number; data: Buffer; offset?: number }
  | { kind: 'ftruncate'; fd: number; size: number }
  | { kind: 'fsync'; fd: number }
  | { kind: 'close'; fd: number }
  | { kind: 'rename'; from: string; to: string }
  | { kind: 'unlink'; path: string }
  | { kind: 'mkdir'; path: string }
  | { kind: 'mark'; label: string }
  /** A call the checker does not model, with every path it names; an error if it touches the workload's files. */
  | { kind: 'unmodelled'; name: string; paths: string[] };

const SYSCALLS = [
  'open',
  'openat',
  'creat',
  'write',
  'pwrite64',
  'writev',
  'pwritev',
  'pwritev2',
  'ftruncate',
  'truncate',
  'fsync',
  'fdatasync',
  'sync_file_range',
  'close',
  'rename',
  'renameat',
  'renameat2',
  'unlink',
  'unlinkat',
  'rmdir',
  'mkdir',
  'mkdirat',
  'link',
  'linkat',
  'symlink',
  'symlinkat',
  'fallocate',
  'copy_file_range',
  'sendfile',
  'access',
  'faccessat',
  'faccessat2',
];

/** Runs `node --import tsx script ...args` under strace and returns the parsed operations. */
export async function traceWorkload(script: string, args: string[], logFile: string): Promise<TraceOp[]> {
  await run(
    'strace',
    [
      '-f',
      '-qq',
      '-y',
      '-xx',
      '-s',
      String(1 << 26),
      '-e',
      `trace=${SYSCALLS.join(',')}`,
      '-o',
      logFile,
      process.execPath,
      '--import',
      'tsx',
      script,
      ...args,
    ],
    { maxBuffer: 1 << 26 },
  );
  return parseTrace(await readFile(logFile, 'utf8'));
}

function hexString(s: string): Buffer {
  // -xx prints every byte as \xHH, so a string is "\x.." with nothing else between the quotes.
  const body = s.slice(1, s.lastIndexOf('"'));
  return Buffer.from(body.replaceAll('\\x', ''), 'hex');
}

/** `12<\x2f...>` or `AT_FDCWD<\x2f...>`: the number (or -100) and the path strace resolved. */
function fdArg(arg: string): { fd: number; path: string } {
  const open = arg.indexOf('<');
  const head = arg.slice(0, open === -1 ? undefined : open);
  const path =
    open === -1 ? '' : Buffer.from(arg.slice(open + 1, -1).replaceAll('\\x', ''), 'hex').toString();
  return { fd: head === 'AT_FDCWD' ? -100 : Number(head), path };
}

function splitArgs(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let inString = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '[' || c === '{' || c === '<') depth++;
    else if (c === ']' || c === '}' || c === '>') depth--;
    else if (c === ',' && depth === 0) {
      out.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  if (text.slice(start).trim() !== '') out.push(text.slice(start).trim());
  return out;
}

function namedPaths(arg: string): string[] {
  if (arg.startsWith('"')) return [hexString(arg).toString()];
  return arg.includes('<') ? [fdArg(arg).path] : [];
}

function atPath(dirArg: string, pathArg: string): string {
  const path = hexString(pathArg).toString();
  return isAbsolute(path) ? resolve(path) : join(fdArg(dirArg).path, path);
}

function iovData(arg: string): Buffer {
  return Buffer.concat([...arg.matchAll(/iov_base="([^"]*)"/g)].map((m) => hexString(`"${m[1]}"`)));
}

function toOp(name: string, a: string[], ret: string): TraceOp | null {
  const failed = ret.startsWith('-1');
  if (name === 'access' || name === 'faccessat' || name === 'faccessat2') {
    const path = hexString(name === 'access' ? a[0] : a[1]).toString();
    return path.startsWith(MARK_ROOT) ? { kind: 'mark', label: path.slice(MARK_ROOT.length) } : null;
  }
  if (failed) return null;
  switch (name) {
    case 'open':
    case 'openat':
    case 'creat': {
      const path = name === 'openat' ? atPath(a[0], a[1]) : resolve(hexString(a[0]).toString());
      const flags = name === 'creat' ? 'O_CREAT|O_TRUNC' : name === 'openat' ? a[2] : a[1];
      return {
        kind: 'open',
        path,
        fd: fdArg(ret).fd,
        create: flags.includes('O_CREAT'),
        truncate: flags.includes('O_TRUNC'),
        append: flags.includes('O_APPEND'),
      };
    }
    case 'write':
      return { kind: 'write', fd: fdArg(a[0]).fd, data: hexString(a[1]) };
    case 'pwrite64':
      return { kind: 'write', fd: fdArg(a[0]).fd, data: hexString(a[1]), offset: Number(a[3]) };
    case 'writev':
      return { kind: 'write', fd: fdArg(a[0]).fd, data: iovData(a[1]) };
    case 'pwritev':
    case 'pwritev2':
      return { kind: 'write', fd: fdArg(a[0]).fd, data: iovData(a[1]), offset: Number(a[3]) };
    case 'ftruncate':
      return { kind: 'ftruncate', fd: fdArg(a[0]).fd, size: Number(a[1]) };
    case 'fsync':
    case 'fdatasync':
      return { kind: 'fsync', fd: fdArg(a[0]).fd };
    case 'close':
      return { kind: 'close', fd: fdArg(a[0]).fd };
    case 'rename':
      return {
        kind: 'rename',
        from: resolve(hexString(a[0]).toString()),
        to: resolve(hexString(a[1]).toString()),
      };
    case 'renameat':
    case 'renameat2':
      return { kind: 'rename', from: atPath(a[0], a[1]), to: atPath(a[2], a[3]) };
    case 'unlink':
    case 'rmdir':
      return { kind: 'unlink', path: resolve(hexString(a[0]).toString()) };
    case 'unlinkat':
      return { kind: 'unlink', path: atPath(a[0], a[1]) };
    case 'mkdir':
      return { kind: 'mkdir', path: resolve(hexString(a[0]).toString()) };
    case 'mkdirat':
      return { kind: 'mkdir', path: atPath(a[0], a[1]) };
    default:
      // truncate by path, links, fallocate, copies, sync_file_range: the product does not use them on
      // its files; the model refuses a trace where it starts to, rather than model it wrongly.
      return { kind: 'unmodelled', name, paths: a.flatMap(namedPaths) };
  }
}

/** Parses an `strace -f -y -xx` log, joining calls that other threads interrupted. */
export function parseTrace(log: string): TraceOp[] {
  const pending = new Map<string, string>();
  const ops: TraceOp[] = [];
  for (const raw of log.split('\n')) {
    const space = raw.indexOf(' ');
    if (space === -1) continue;
    const pid = raw.slice(0, space);
    let line = raw.slice(space + 1).trimStart();
    if (line.endsWith('<unfinished ...>')) {
      pending.set(pid, line.slice(0, -'<unfinished ...>'.length));
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>/.exec(line);
    if (resumed) {
      line = (pending.get(pid) ?? '') + line.slice(resumed[0].length);
      pending.delete(pid);
    }
    const call = /^(\w+)\((.*)\) += (.*)$/s.exec(line);
    if (!call) continue;
    const op = toOp(call[1], splitArgs(call[2]), call[3]);
    if (op) ops.push(op);
  }
  return ops;
}
