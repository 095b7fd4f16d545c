// `facegate enroll | identify | gallery`: the gallery from the command line, with the same models and
// thresholds as the camera path.
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.ts';
import { Gallery } from '../matching/gallery/index.ts';
import { FaceAnalyzer } from '../pipeline/analyzer.ts';
import { enrollPhotos } from '../pipeline/enroll.ts';
import { decodeImage } from '../vision/image.ts';

const COMMON = { gallery: { type: 'string' }, config: { type: 'string' } } as const;

async function withAnalyzer<T>(
  configFile: string | undefined,
  fn: (analyzer: FaceAnalyzer, targetFar: number) => Promise<T>,
): Promise<T> {
  const config = loadConfig({ file: configFile, env: process.env });
  const analyzer = await FaceAnalyzer.open(config);
  try {
    return await fn(analyzer, config.recognition.targetFar);
  } finally {
    await analyzer.close();
  }
}

function requireGallery(path: string | undefined, usage: string): string {
  if (!path) throw new Error(`--gallery PATH is required\n${usage}`);
  return path;
}

const ENROLL_USAGE = 'usage: facegate enroll --gallery PATH --name NAME IMAGE...';

export async function enrollCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...COMMON, name: { type: 'string' } },
  });
  const path = requireGallery(values.gallery, ENROLL_USAGE);
  if (!values.name || positionals.length === 0) throw new Error(ENROLL_USAGE);
  const name = values.name;
  const gallery = Gallery.open(path);
  try {
    const { added } = await withAnalyzer(values.config, (analyzer) =>
      enrollPhotos(
        analyzer,
        gallery,
        name,
        positionals.map((p) => ({ source: p, data: p })),
      ),
    );
    console.log(`enrolled ${name}: ${added} embedding(s)`);
  } finally {
    gallery.close();
  }
  return 0;
}

const IDENTIFY_USAGE = 'usage: facegate identify --gallery PATH IMAGE... [--json]';

export async function identifyCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...COMMON, json: { type: 'boolean', default: false } },
  });
  const path = requireGallery(values.gallery, IDENTIFY_USAGE);
  if (positionals.length === 0) throw new Error(IDENTIFY_USAGE);
  const gallery = Gallery.open(path);
  let failed = 0;
  try {
    await withAnalyzer(values.config, async (analyzer, targetFar) => {
      const threshold = analyzer.thresholdFor(targetFar);
      for (const file of positionals) {
        try {
          const image = await decodeImage(file);
          const detections = await analyzer.detect(image);
          const crops = await Promise.all(detections.map((d) => analyzer.align(image, d)));
          const embeddings = await analyzer.embed(crops);
          const faces = detections.map((d, i) => {
            const match = gallery.identify(embeddings[i], analyzer.modelRef, threshold);
            return {
              box: d.box.map((v) => Math.round(v * 10) / 10),
              identity: match.identity,
              score: Number(match.score.toFixed(4)),
            };
          });
          const result = { image: file, faces };
          console.log(
            values.json
              ? JSON.stringify(result)
              : `${file}: ${faces.map((f) => `${f.identity ?? 'unknown'} (${f.score})`).join(', ') || 'no face'}`,
          );
        } catch (e) {
          // One unreadable image is reported in place; the others are still identified.
          failed++;
          const result = { image: file, error: (e as Error).message, faces: [] };
          console.log(values.json ? JSON.stringify(result) : `${file}: error: ${result.error}`);
        }
      }
    });
  } finally {
    gallery.close();
  }
  return failed > 0 ? 1 : 0;
}

const GALLERY_USAGE =
  'usage: facegate gallery list --gallery PATH [--json] | facegate gallery remove --gallery PATH NAME';

export async function galleryCommand(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { ...COMMON, json: { type: 'boolean', default: false } },
  });
  const gallery = Gallery.open(requireGallery(values.gallery, GALLERY_USAGE));
  try {
    if (action === 'list') {
      const people = gallery.list();
      if (values.json) console.log(JSON.stringify(people));
      else
        for (const p of people)
          console.log(
            `${p.name}\t${p.embeddings} embedding(s)\t${p.models.join(',')}\t${p.createdAt.toISOString()}`,
          );
      return 0;
    }
    if (action === 'remove' && positionals.length === 1) {
      if (!gallery.remove(positionals[0]))
        throw new Error(`no person named "${positionals[0]}" in the gallery`);
      console.log(`removed ${positionals[0]}`);
      return 0;
    }
    throw new Error(GALLERY_USAGE);
  } finally {
    gallery.close();
  }
}
