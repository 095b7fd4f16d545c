// Interleaved timing: every case runs once per round, in turn, so drift in machine state (thermal,
// other load) hits all cases alike and their ratios stay meaningful.

export interface BenchCase {
  name: string;
  run: () => Promise<unknown>;
}

export interface Timing {
  name: string;
  p50: number;
  p95: number;
  samples: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** The median (nearest-rank) of unsorted values. */
export function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

export async function interleaved(
  cases: BenchCase[],
  opts: { warmup: number; rounds: number; onRound?: (round: number) => void },
): Promise<Timing[]> {
  for (let i = 0; i < opts.warmup; i++) for (const c of cases) await c.run();
  const times = cases.map(() => [] as number[]);
  for (let round = 0; round < opts.rounds; round++) {
    for (let i = 0; i < cases.length; i++) {
      const start = performance.now();
      await cases[i].run();
      times[i].push(performance.now() - start);
    }
    opts.onRound?.(round + 1);
  }
  return cases.map((c, i) => {
    const sorted = [...times[i]].sort((a, b) => a - b);
    return { name: c.name, p50: percentile(sorted, 50), p95: percentile(sorted, 95), samples: sorted.length };
  });
}
