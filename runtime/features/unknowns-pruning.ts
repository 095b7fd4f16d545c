// Forgets unknown visitors past unknowns.retentionDays: at start and every PRUNE_INTERVAL_MS.
import type { Config } from '../config/index.ts';
import type { UnknownVisitors } from '../matching/unknowns.ts';
import type { Logger } from '../util/log.ts';

/** Unknown visitors past unknowns.retentionDays are forgotten this often (and whenever one is added). */
const PRUNE_INTERVAL_MS = 3_600_000;

export interface UnknownsPruningOptions {
  unknowns: UnknownVisitors;
  /** Read at each pruning, so config/set applies from the next one. */
  settings: () => Config['unknowns'];
  log: Logger;
}

export class UnknownsPruning {
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: UnknownsPruningOptions) {}

  start(): void {
    this.timer = setInterval(() => this.prune(), PRUNE_INTERVAL_MS);
    this.prune();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private prune(): void {
    try {
      const removed = this.opts.unknowns.prune(this.opts.settings(), Date.now());
      if (removed > 0) this.opts.log.info(`forgot ${removed} unknown visitor(s)`);
    } catch (e) {
      this.opts.log.error(`pruning unknown visitors failed: ${(e as Error).message}`);
    }
  }
}
