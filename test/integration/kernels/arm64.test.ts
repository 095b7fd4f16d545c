// Runs the native C++ kernel test under qemu as Cortex-A76 (dotprod) and Cortex-A72 (plain NEON),
// and natively (AVX2 vs scalar on x86).
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { KERNELS_DIR } from '../../helpers/kernels.ts';

const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const tools = has('aarch64-linux-gnu-g++') && has('qemu-aarch64');
if (!tools) console.warn('arm64 kernel test skipped: install g++-aarch64-linux-gnu and qemu-user to run it');

describe.skipIf(!tools)('arm64 kernels under qemu', () => {
  it('every NEON path equals scalar (cortex-a76 and cortex-a72), and the native path too', () => {
    const run = spawnSync('bash', ['test/run-arm64.sh', '200'], { cwd: KERNELS_DIR, encoding: 'utf8' });
    const out = `${run.stdout}${run.stderr}`;
    expect(run.status, out).toBe(0);
    expect(out).toMatch(
      /-cpu cortex-a76\nkernel_test: best ISA neon-dotprod; checking neon neon-dotprod against/,
    );
    expect(out).toMatch(/-cpu cortex-a72\nkernel_test: best ISA neon; checking neon against/);
    expect(out).not.toMatch(/MISMATCH/);
    if (process.arch === 'x64' && has('qemu-x86_64')) {
      expect(out).toMatch(/-cpu Haswell \(AVX2, no AVX-512\)\nkernel_test: best ISA avx2;/);
      expect(out).toMatch(/-cpu Nehalem \(no AVX2\)\nkernel_test: best ISA scalar;/);
    }
  }, 600_000);
});
