// Line charts as PNG without a browser: the chart is built as an SVG string and rasterised by
// sharp (librsvg), which the runtime already depends on for image decoding.
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import sharp from 'sharp';

export interface ChartSeries {
  name: string;
  points: ReadonlyArray<readonly [number, number]>;
  dashed?: boolean;
}

export interface ChartMarker {
  x: number;
  y: number;
  label: string;
}

export type LegendPosition = 'top-left' | 'top-right' | 'bottom-left' | 'bottom-right';

export interface LineChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Log-scale x axis; points with x <= 0 cannot be placed on it and break the line. */
  xLog?: boolean;
  /** Axis ranges default to the data extent (rounded out to ticks/decades). */
  xRange?: readonly [number, number];
  yRange?: readonly [number, number];
  series: readonly ChartSeries[];
  markers?: readonly ChartMarker[];
  legend?: LegendPosition;
  width?: number;
  height?: number;
}

// Tableau 10: distinct hues that stay distinguishable when printed or viewed by most colour-blind readers.
const PALETTE = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
];
const FONT = 'font-family="sans-serif"';
const MARGIN = { top: 50, right: 30, bottom: 70, left: 85 };
// Points closer than this (in px) to the last drawn one add nothing visible; dropping them keeps
// a million-point ROC curve to a few thousand path commands.
const MIN_STEP_PX = 0.5;

interface Tick {
  value: number;
  label: string;
  major: boolean;
}

interface Axis {
  min: number;
  max: number;
  log: boolean;
}

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function fmt(px: number): string {
  return px.toFixed(2);
}

function niceStep(span: number): number {
  const raw = span / 8;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5].map((m) => m * magnitude).find((s) => s >= raw) ?? 10 * magnitude;
}

function linearTicks(axis: Axis): Tick[] {
  const step = niceStep(axis.max - axis.min);
  // Labels from toFixed so 0.1 * 3 prints as 0.3, not 0.30000000000000004.
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const ticks: Tick[] = [];
  const eps = step * 1e-9;
  for (let i = Math.ceil((axis.min - eps) / step); i * step <= axis.max + eps; i++) {
    const value = i * step;
    ticks.push({ value, label: value.toFixed(decimals), major: true });
  }
  return ticks;
}

// Built from the decimal string so labels read 0.001 rather than 0.0010000000000000002.
function powerLabel(mantissa: number, exponent: number): string {
  return Math.abs(exponent) >= 4 ? `${mantissa}e${exponent}` : String(Number(`${mantissa}e${exponent}`));
}

function logTicks(axis: Axis): Tick[] {
  const ticks: Tick[] = [];
  const eps = 1e-9;
  for (let e = Math.floor(Math.log10(axis.min)); e <= Math.ceil(Math.log10(axis.max)); e++) {
    for (let m = 1; m <= 9; m++) {
      const value = Number(`${m}e${e}`);
      if (value < axis.min * (1 - eps) || value > axis.max * (1 + eps)) continue;
      ticks.push({ value, label: powerLabel(m, e), major: m === 1 });
    }
  }
  // Within less than a decade only the 2..9 ticks are left; label them or the axis has no numbers.
  if (ticks.filter((t) => t.major).length < 2) for (const t of ticks) t.major = true;
  return ticks;
}

function extent(values: number[], log: boolean): [number, number] {
  // A loop, not Math.min(...values): spreading a million-point ROC overflows the call stack.
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    if (!Number.isFinite(v) || (log && v <= 0)) continue;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (lo > hi) return log ? [0.1, 1] : [0, 1];
  if (log) {
    lo = 10 ** Math.floor(Math.log10(lo));
    hi = 10 ** Math.ceil(Math.log10(hi));
    return lo === hi ? [lo / 10, hi * 10] : [lo, hi];
  }
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const step = niceStep(hi - lo);
  return [Math.floor(lo / step) * step, Math.ceil(hi / step) * step];
}

function makeAxis(
  name: string,
  range: readonly [number, number] | undefined,
  data: number[],
  log: boolean,
): Axis {
  const [min, max] = range ?? extent(data, log);
  if (!(Number.isFinite(min) && Number.isFinite(max) && min < max)) {
    throw new Error(`${name} range must be finite with min < max, got [${min}, ${max}]`);
  }
  if (log && min <= 0) throw new Error(`${name} range must be positive on a log axis, got [${min}, ${max}]`);
  return { min, max, log };
}

function scaler(axis: Axis, from: number, to: number): (v: number) => number {
  const f = axis.log ? Math.log10 : (v: number) => v;
  const a = f(axis.min);
  const b = f(axis.max);
  return (v) => from + ((f(v) - a) / (b - a)) * (to - from);
}

// Rough advance width of sans-serif glyphs, enough to size the legend box and keep labels inside.
function textWidth(text: string, size: number): number {
  return text.length * size * 0.6;
}

export function lineChartSvg(spec: LineChartSpec): string {
  const width = spec.width ?? 900;
  const height = spec.height ?? 600;
  const left = MARGIN.left;
  const right = width - MARGIN.right;
  const top = MARGIN.top;
  const bottom = height - MARGIN.bottom;
  const markers = spec.markers ?? [];
  const xLog = spec.xLog ?? false;

  const xData = [...spec.series.flatMap((s) => s.points.map((p) => p[0])), ...markers.map((m) => m.x)];
  const yData = [...spec.series.flatMap((s) => s.points.map((p) => p[1])), ...markers.map((m) => m.y)];
  const xAxis = makeAxis('x', spec.xRange, xData, xLog);
  const yAxis = makeAxis('y', spec.yRange, yData, false);
  const sx = scaler(xAxis, left, right);
  const sy = scaler(yAxis, bottom, top);

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<defs><clipPath id="plot"><rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}"/></clipPath></defs>`,
  );

  for (const t of xAxis.log ? logTicks(xAxis) : linearTicks(xAxis)) {
    const x = fmt(sx(t.value));
    out.push(
      `<line x1="${x}" y1="${top}" x2="${x}" y2="${bottom}" stroke="${t.major ? '#d0d0d0' : '#ececec'}" stroke-width="1"/>`,
    );
    if (t.major) {
      out.push(
        `<line x1="${x}" y1="${bottom}" x2="${x}" y2="${bottom + 5}" stroke="#333333"/>`,
        `<text x="${x}" y="${bottom + 20}" ${FONT} font-size="12" fill="#333333" text-anchor="middle">${escapeXml(t.label)}</text>`,
      );
    }
  }
  for (const t of linearTicks(yAxis)) {
    const y = fmt(sy(t.value));
    out.push(
      `<line x1="${left}" y1="${y}" x2="${right}" y2="${y}" stroke="#d0d0d0" stroke-width="1"/>`,
      `<line x1="${left - 5}" y1="${y}" x2="${left}" y2="${y}" stroke="#333333"/>`,
      `<text x="${left - 8}" y="${y}" ${FONT} font-size="12" fill="#333333" text-anchor="end" dominant-baseline="middle">${escapeXml(t.label)}</text>`,
    );
  }
  out.push(
    `<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="#333333" stroke-width="1"/>`,
    `<text x="${width / 2}" y="30" ${FONT} font-size="18" font-weight="bold" fill="#111111" text-anchor="middle">${escapeXml(spec.title)}</text>`,
    `<text x="${(left + right) / 2}" y="${height - 20}" ${FONT} font-size="14" fill="#111111" text-anchor="middle">${escapeXml(spec.xLabel)}</text>`,
    `<text x="20" y="${(top + bottom) / 2}" ${FONT} font-size="14" fill="#111111" text-anchor="middle" transform="rotate(-90 20 ${(top + bottom) / 2})">${escapeXml(spec.yLabel)}</text>`,
  );

  spec.series.forEach((s, idx) => {
    const colour = PALETTE[idx % PALETTE.length];
    const dash = s.dashed ? ' stroke-dasharray="8 5"' : '';
    out.push(
      `<path d="${seriesPath(s.points, sx, sy, xLog)}" fill="none" stroke="${colour}" stroke-width="2"${dash} stroke-linejoin="round" clip-path="url(#plot)"/>`,
    );
  });

  for (const m of markers) {
    const inside = m.x >= xAxis.min && m.x <= xAxis.max && m.y >= yAxis.min && m.y <= yAxis.max;
    if (!inside) continue;
    const x = sx(m.x);
    const y = sy(m.y);
    // Labels near the right edge go to the left of the point so they stay readable.
    const flip = x + 8 + textWidth(m.label, 12) > right;
    out.push(
      `<circle cx="${fmt(x)}" cy="${fmt(y)}" r="4" fill="#111111" stroke="#ffffff" stroke-width="1"/>`,
      `<text x="${fmt(flip ? x - 8 : x + 8)}" y="${fmt(y - 8)}" ${FONT} font-size="12" fill="#111111" text-anchor="${flip ? 'end' : 'start'}">${escapeXml(m.label)}</text>`,
    );
  }

  if (spec.series.length > 0)
    out.push(legend(spec.series, spec.legend ?? 'bottom-right', left, right, top, bottom));
  out.push('</svg>');
  return out.join('\n');
}

function seriesPath(
  points: ReadonlyArray<readonly [number, number]>,
  sx: (v: number) => number,
  sy: (v: number) => number,
  xLog: boolean,
): string {
  const commands: string[] = [];
  let last: [number, number] | undefined;
  let pending: [number, number] | undefined;
  for (const [xv, yv] of points) {
    if (!Number.isFinite(xv) || !Number.isFinite(yv) || (xLog && xv <= 0)) {
      if (pending) commands.push(`L${fmt(pending[0])},${fmt(pending[1])}`);
      last = undefined;
      pending = undefined;
      continue;
    }
    const p: [number, number] = [sx(xv), sy(yv)];
    if (!last) {
      commands.push(`M${fmt(p[0])},${fmt(p[1])}`);
      last = p;
    } else if (Math.hypot(p[0] - last[0], p[1] - last[1]) >= MIN_STEP_PX) {
      commands.push(`L${fmt(p[0])},${fmt(p[1])}`);
      last = p;
      pending = undefined;
    } else {
      // Remember the skipped point so a run always ends exactly where the data does.
      pending = p;
    }
  }
  if (pending) commands.push(`L${fmt(pending[0])},${fmt(pending[1])}`);
  return commands.join('');
}

function legend(
  series: readonly ChartSeries[],
  position: LegendPosition,
  left: number,
  right: number,
  top: number,
  bottom: number,
): string {
  const size = 13;
  const row = 20;
  const sample = 28;
  const pad = 10;
  const boxW = pad * 3 + sample + Math.max(...series.map((s) => textWidth(s.name, size)));
  const boxH = pad * 2 + row * series.length - (row - size);
  const x0 = position.endsWith('left') ? left + 10 : right - 10 - boxW;
  const y0 = position.startsWith('top') ? top + 10 : bottom - 10 - boxH;
  const out = [
    `<rect x="${fmt(x0)}" y="${fmt(y0)}" width="${fmt(boxW)}" height="${fmt(boxH)}" fill="#ffffff" fill-opacity="0.9" stroke="#999999"/>`,
  ];
  series.forEach((s, idx) => {
    const y = y0 + pad + idx * row + size / 2;
    const dash = s.dashed ? ' stroke-dasharray="8 5"' : '';
    out.push(
      `<line x1="${fmt(x0 + pad)}" y1="${fmt(y)}" x2="${fmt(x0 + pad + sample)}" y2="${fmt(y)}" stroke="${PALETTE[idx % PALETTE.length]}" stroke-width="2"${dash}/>`,
      `<text x="${fmt(x0 + pad * 2 + sample)}" y="${fmt(y)}" ${FONT} font-size="${size}" fill="#111111" dominant-baseline="middle">${escapeXml(s.name)}</text>`,
    );
  });
  return out.join('\n');
}

export async function renderLineChart(spec: LineChartSpec, pngPath: string): Promise<void> {
  const svg = lineChartSvg(spec);
  await mkdir(dirname(pngPath), { recursive: true });
  await sharp(Buffer.from(svg)).png().toFile(pngPath);
}

export interface RocSeries {
  name: string;
  points: ReadonlyArray<{ far: number; tpr: number }>;
  dashed?: boolean;
}

export interface RocChartOptions {
  /** Zoom the TPR axis, e.g. [0.9, 1] when every model is above 90%. Default [0, 1]. */
  tprRange?: readonly [number, number];
  /** FAR axis range; default [1e-4, 1], the range LFW-scale impostor sets can resolve. */
  farRange?: readonly [number, number];
  markers?: readonly ChartMarker[];
}

/** The ROC plot of `eval lfw --roc`: FAR on a log axis against TPR. */
export function rocChart(
  curves: readonly RocSeries[],
  title: string,
  options: RocChartOptions = {},
): LineChartSpec {
  return {
    title,
    xLabel: 'False accept rate (FAR, log scale)',
    yLabel: 'True accept rate (TPR)',
    xLog: true,
    xRange: options.farRange ?? [1e-4, 1],
    yRange: options.tprRange ?? [0, 1],
    series: curves.map((c) => ({
      name: c.name,
      dashed: c.dashed,
      points: c.points.map((p) => [p.far, p.tpr] as const),
    })),
    markers: options.markers,
    legend: 'bottom-right',
  };
}

export async function renderRoc(
  curves: readonly RocSeries[],
  pngPath: string,
  title: string,
  options: RocChartOptions = {},
): Promise<void> {
  await renderLineChart(rocChart(curves, title, options), pngPath);
}
