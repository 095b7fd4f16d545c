// Regenerates the self-test's golden set (runtime/model-update/golden/) from face_recognition's MIT
// example photos, through the pipeline itself: the fp32 detector, alignedFaceCrop, and then the
// self-test run on the built fp32 and int8 models to show the set is passable.
//   tsx tools/models/make-golden.ts
//   FACEGATE_MODELS_DIR (default: models/); the photos are the committed ones (test/fixtures/faces)
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { openModel } from '../../runtime/engine/registry.ts';
import { GOLDEN_DIR, type GoldenSet, selfTest } from '../../runtime/model-update/selftest.ts';
import { modelsDir, TRAIN_FACES_DIR } from '../../runtime/paths.ts';
import { writeFileAtomic } from '../../runtime/util/atomic-file.ts';
import { DEFAULT_DETECTION, FaceDetector } from '../../runtime/vision/detector.ts';
import { alignedFaceCrop } from '../../runtime/vision/face-crop.ts';
import { decodeImage } from '../../runtime/vision/image.ts';

const CROPS = [
  ['obama', 'obama/obama.jpg'],
  ['obama', 'obama/obama2.jpg'],
  ['biden', 'biden/biden.jpg'],
  ['biden', 'biden/biden2.jpg'],
  ['rose_leslie', 'rose_leslie/img1.jpg'],
  ['rose_leslie', 'rose_leslie/img2.jpg'],
  ['kit_harington', 'kit_harington/john1.jpeg'],
  ['kit_harington', 'kit_harington/john2.jpeg'],
] as const;
// Photos on which the shipped int8 detector also finds exactly one face (it sees phantom faces in the
// letterbox padding of narrower portraits).
const PHOTOS = ['obama/obama.jpg', 'rose_leslie/img1.jpg'];
/** BlazeFace sees 256x256 anyway, so a photo this size loses nothing the detector would use. */
const PHOTO_SIDE = 256;
const MAX_TOTAL_BYTES = 200 * 1024;

async function makeGolden(modelsDir: string, photosDir: string): Promise<void> {
  const { engine } = await openModel({ dir: modelsDir, name: 'blazeface', precision: 'fp32' });
  const detector = new FaceDetector(engine, DEFAULT_DETECTION);
  mkdirSync(GOLDEN_DIR, { recursive: true });
  const golden: GoldenSet = { crops: [], pairs: { same: [], different: [] }, photos: [] };

  const counts = new Map<string, number>();
  for (const [person, source] of CROPS) {
    const image = await decodeImage(join(photosDir, source));
    const { crop, face } = await alignedFaceCrop(detector, image);
    if (!face) throw new Error(`${source}: no face found`);
    const n = (counts.get(person) ?? 0) + 1;
    counts.set(person, n);
    const file = `${person}-${n}.png`;
    const size = Math.sqrt(crop.length / 3);
    // A 256-colour palette keeps a crop near 18 KB; the self-test's margins are measured on these very files.
    writeFileAtomic(
      join(GOLDEN_DIR, file),
      await sharp(crop, { raw: { width: size, height: size, channels: 3 } })
        .png({ palette: true, effort: 10, compressionLevel: 9 })
        .toBuffer(),
    );
    golden.crops.push({ file, person, source });
  }
  golden.crops.forEach((a, i) => {
    for (const b of golden.crops.slice(i + 1))
      (a.person === b.person ? golden.pairs.same : golden.pairs.different).push([a.file, b.file]);
  });

  for (const source of PHOTOS) {
    const jpeg = await sharp(join(photosDir, source))
      .rotate()
      .resize(PHOTO_SIDE, PHOTO_SIDE, { fit: 'inside' })
      .jpeg({ quality: 85, mozjpeg: true })
      .toBuffer();
    const faces = await detector.detect(await decodeImage(jpeg));
    if (faces.length !== 1)
      throw new Error(
        `${source}: ${faces.length} faces at ${PHOTO_SIDE} px, a golden photo needs exactly one`,
      );
    const file = `photo-${source.split('/')[0]}.jpg`;
    writeFileAtomic(join(GOLDEN_DIR, file), jpeg);
    golden.photos.push({
      file,
      source,
      box: faces[0].box.map((v) => Number(v.toFixed(2))) as GoldenSet['photos'][0]['box'],
    });
  }
  // Arrays of plain values on one line, as biome formats them.
  const json = JSON.stringify(golden, null, 2).replace(
    /\[\s+([^[\]{}]*?)\s+\]/g,
    (_, inner: string) => `[${inner.split(/,\s+/).join(', ')}]`,
  );
  writeFileAtomic(join(GOLDEN_DIR, 'golden.json'), `${json}\n`);
  await engine.close();

  const total = readdirSync(GOLDEN_DIR).reduce((sum, f) => sum + statSync(join(GOLDEN_DIR, f)).size, 0);
  console.log(
    `golden set: ${golden.crops.length} crops, ${golden.photos.length} photos, ${total} bytes in ${GOLDEN_DIR}`,
  );
  if (total > MAX_TOTAL_BYTES)
    throw new Error(`golden set is ${total} bytes, over the ${MAX_TOTAL_BYTES} budget`);

  for (const name of ['facerec', 'blazeface']) {
    for (const precision of ['fp32', 'int8'] as const) {
      const model = await openModel({ dir: modelsDir, name, precision });
      const report = await selfTest(model.engine, model.manifest);
      await model.engine.close();
      const detail =
        report.sameMin !== undefined
          ? ` same >= ${report.sameMin.toFixed(4)}, different <= ${report.differentMax?.toFixed(4)}`
          : ` scores ${report.faceScores?.map((s) => s.toFixed(3)).join(' ')}`;
      console.log(
        `${name}.${precision}: ${report.ok ? 'passes' : `FAILS: ${report.failures.join('; ')}`};${detail}; ${report.latencyMs.toFixed(1)} ms`,
      );
      if (!report.ok) process.exitCode = 1;
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await makeGolden(modelsDir(), TRAIN_FACES_DIR);
}
