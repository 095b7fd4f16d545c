// Progress for long jobs: a line every few seconds with rate and ETA (plain lines, so logs and CI
// output read well too).

export class Progress {
  private done_ = 0;
  private readonly started = performance.now();
  private lastPrint = 0;

  constructor(
    private label: string,
    private total: number,
    private write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
    private everyMs = 3000,
  ) {}

  tick(n = 1): void {
    this.done_ += n;
    const now = performance.now();
    if (now - this.lastPrint >= this.everyMs) {
      this.lastPrint = now;
      this.write(this.line(now));
    }
  }

  done(): void {
    this.write(`${this.line(performance.now())} done`);
  }

  private line(now: number): string {
    const seconds = (now - this.started) / 1000;
    const rate = this.done_ / Math.max(seconds, 1e-9);
    const eta = rate > 0 ? (this.total - this.done_) / rate : 0;
    const pct = this.total > 0 ? ((100 * this.done_) / this.total).toFixed(1) : '100';
    return `[${this.label}] ${this.done_}/${this.total} (${pct}%) ${rate.toFixed(1)}/s, ${seconds.toFixed(0)}s elapsed, eta ${eta.toFixed(0)}s`;
  }
}
