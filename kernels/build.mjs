// Builds the native kernels with node-gyp. Never fails the install: without a compiler (or on a
// failed build) it prints one warning and the runtime falls back to ONNX Runtime.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const nodePrefix = resolve(dirname(process.execPath), '..');

function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(nodePrefix, 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  ];
  return candidates.find((p) => p && existsSync(p));
}

function warn(reason) {
  console.warn(`facegate: native kernels not built (${reason}): the runtime will use ONNX Runtime`);
  process.exit(0);
}

if (process.env.FACEGATE_SKIP_NATIVE === '1') warn('FACEGATE_SKIP_NATIVE=1');
const gyp = nodeGyp();
if (!gyp) warn('node-gyp not found');
const args = [gyp, 'rebuild', `--jobs=${process.env.FACEGATE_BUILD_JOBS ?? 'max'}`];
// Use the running node's own headers when present, so nothing is downloaded.
const nodedir = process.env.npm_config_nodedir ?? (existsSync(join(nodePrefix, 'include/node/node_api.h')) ? nodePrefix : undefined);
if (nodedir) args.push(`--nodedir=${nodedir}`);

const started = Date.now();
const result = spawnSync(process.execPath, args, { cwd: here, encoding: 'utf8', env: process.env });
const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
if (result.error || result.status !== 0) {
  const lines = output.trim().split('\n');
  if (process.env.FACEGATE_BUILD_VERBOSE === '1') console.warn(output);
  const cause = lines.find((l) => /error|not found|No such file/i.test(l)) ?? lines.at(-1) ?? String(result.error);
  warn(`node-gyp failed: ${cause.trim().slice(0, 200)}`);
}
console.log(`facegate: native kernels built in ${((Date.now() - started) / 1000).toFixed(0)} s (kernels/build/Release/facegate_kernels.node)`);
