import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lineChartSvg, renderLineChart, renderRoc } from '../../../runtime/report/plot.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'facegate-plot-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// Pixels within a small distance of an RGB colour; antialiasing blurs the exact value.
async function countColour(file: string, [r, g, b]: [number, number, number]): Promise<number> {
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  let n = 0;
  for (let i = 0; i < data.length; i += info.channels) {
    if (Math.abs(data[i] - r) + Math.abs(data[i + 1] - g) + Math.abs(data[i + 2] - b) < 30) n++;
  }
  return n;
}

const BLUE: [number, number, number] = [0x1f, 0x77, 0xb4];
const ORANGE: [number, number, number] = [0xff, 0x7f, 0x0e];

describe('renderLineChart', () => {
  it('writes a 900x600 PNG with visible content and one colour per series', async () => {
    const file = join(dir, 'nested', 'line.png');
    await renderLineChart(
      {
        title: 'Accuracy vs threshold',
        xLabel: 'threshold',
        yLabel: 'accuracy',
        series: [
          { name: 'fp32', points: Array.from({ length: 50 }, (_, i) => [i / 50, Math.sin(i / 10)] as const) },
          {
            name: 'int8',
            points: [
              [0, 0.2],
              [1, 0.9],
            ],
            dashed: true,
          },
        ],
        markers: [{ x: 0.5, y: 0.5, label: 'chosen' }],
      },
      file,
    );
    const meta = await sharp(file).metadata();
    expect(meta).toMatchObject({ format: 'png', width: 900, height: 600 });
    const stats = await sharp(file).stats();
    expect(stats.channels.some((c) => c.min !== c.max)).toBe(true);
    expect(await countColour(file, BLUE)).toBeGreaterThan(200);
    expect(await countColour(file, ORANGE)).toBeGreaterThan(200);
  });
});

describe('renderRoc', () => {
  it('draws curves on a log FAR axis from 1e-4 to 1', async () => {
    const file = join(dir, 'roc.png');
    const points = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1].map((far, i) => ({ far, tpr: 0.5 + i * 0.1 }));
    await renderRoc([{ name: 'model', points }], file, 'ROC');
    expect(await sharp(file).metadata()).toMatchObject({ format: 'png', width: 900, height: 600 });
    expect(await countColour(file, BLUE)).toBeGreaterThan(500);
  });
});

describe('lineChartSvg', () => {
  it('escapes text so names cannot break the SVG', () => {
    const svg = lineChartSvg({
      title: 'A & B <fp32>',
      xLabel: 'x',
      yLabel: 'y',
      series: [
        {
          name: '"q" <s>',
          points: [
            [0, 0],
            [1, 1],
          ],
        },
      ],
    });
    expect(svg).toContain('A &#38; B &#60;fp32&#62;');
    expect(svg).toContain('&#34;q&#34; &#60;s&#62;');
    expect(svg).not.toContain('<fp32>');
  });

  it('labels log-axis decades and breaks lines at points a log axis cannot show', () => {
    const svg = lineChartSvg({
      title: 't',
      xLabel: 'FAR',
      yLabel: 'TPR',
      xLog: true,
      xRange: [1e-4, 1],
      yRange: [0, 1],
      series: [
        {
          name: 's',
          points: [
            [0, 0.1],
            [1e-3, 0.5],
            [0.1, 0.9],
            [Number.NaN, 1],
            [0.5, 0.95],
            [1, 1],
          ],
        },
      ],
    });
    for (const label of ['1e-4', '0.001', '0.01', '0.1', '1']) expect(svg).toContain(`>${label}</text>`);
    const path = /<path d="([^"]*)"/.exec(svg)?.[1] ?? '';
    // x = 0 is dropped and NaN starts a new run: two runs of two points each.
    expect(path.match(/M/g)).toHaveLength(2);
    expect(path.match(/L/g)).toHaveLength(2);
  });

  it('thins a dense series to what the pixels can show', () => {
    const points = Array.from({ length: 100_000 }, (_, i) => [i / 100_000, (i / 100_000) ** 2] as const);
    const svg = lineChartSvg({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 's', points }] });
    const commands = (/<path d="([^"]*)"/.exec(svg)?.[1] ?? '').match(/[ML]/g) ?? [];
    expect(commands.length).toBeGreaterThan(100);
    expect(commands.length).toBeLessThan(5000);
  });

  it('rejects unusable ranges', () => {
    const base = { title: 't', xLabel: 'x', yLabel: 'y', series: [] };
    expect(() => lineChartSvg({ ...base, xLog: true, xRange: [0, 1] })).toThrow(/positive on a log axis/);
    expect(() => lineChartSvg({ ...base, yRange: [1, 1] })).toThrow(/min < max/);
  });
});
