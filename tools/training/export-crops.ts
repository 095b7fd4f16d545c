// Training data for the ReLU-zero gates (training/gates.py): aligned 150x150 face crops made by the
// runtime's own fp32 detector and alignment, plus the fp32 embedder's raw outputs as the teacher.
// Sources are lfw/calib and the unlabelled faces/ sets; lfw/dev is never read (data README protocol).
//
//   npx tsx tools/training/export-crops.ts [outDir]     (default /tmp/facegate-train, outside the repo)
//   FACEGATE_DATA (the face data set, required), FACEGATE_MODELS_DIR as for the rest of the project.
//
// Writes  crops.u8     N x 150 x 150 x 3 packed RGB
//         teacher.f32  N x 128 float32 LE, facerec.fp32 embedding (no mirror, not normalised)
//         index.json   one entry per crop, in file order
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { MODEL_NAMES, openModel } from '../../runtime/models/registry.ts';
import { dataSetDir, modelsDir, PACKAGE_ROOT } from '../../runtime/paths.ts';
import { Progress } from '../../runtime/report/progress.ts';
import { alignFace, centreCrop } from '../../runtime/vision/align.ts';
import { FaceDetector } from '../../runtime/vision/detector.ts';
import { primaryFace } from '../../runtime/vision/face-crop.ts';
import { FACEREC_TEMPLATE } from '../../runtime/vision/face-template.ts';
import { decodeImage } from '../../runtime/vision/image.ts';
import { rgbToNchw } from '../../runtime/vision/tensor.ts';

export interface CropEntry {
  /** Image path relative to the data folder (lfw/calib/... or faces/...). */
  file: string;
  /** Index of the face in the detector's output (-1: none found, the centre-crop fallback). */
  face: number;
  /** LFW identity of the image's primary face; null for every other crop. */
  person: string | null;
  /** false: no face found, the runtime's centre-crop fallback. */
  detected: boolean;
}

const IMAGE = /\.(jpe?g|png)$/i;

function listImages(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return listImages(path);
      return IMAGE.test(name) ? [path] : [];
    });
}

async function main(): Promise<void> {
  ort.env.logLevel = 'error';
  const outDir = resolve(process.argv[2] ?? '/tmp/facegate-train');
  const dataDir = dataSetDir('tools/training/export-crops.ts');
  const models = modelsDir();
  if (outDir.startsWith(`${PACKAGE_ROOT}/`))
    throw new Error(`${outDir} is inside the repository; scratch data must stay out of it`);
  mkdirSync(outDir, { recursive: true });

  const detector = new FaceDetector(
    (await openModel({ dir: models, name: MODEL_NAMES.detector, precision: 'fp32' })).engine,
  );
  const embedder = await openModel({ dir: models, name: MODEL_NAMES.embedder, precision: 'fp32' });
  const input = embedder.manifest.input;
  const size = input.shape[3];

  const calib = listImages(join(dataDir, 'lfw', 'calib'));
  const faces = listImages(join(dataDir, 'faces'));
  const entries: CropEntry[] = [];
  const crops: Buffer[] = [];
  const progress = new Progress('export crops', calib.length + faces.length);
  const skipped: string[] = [];

  // lfw/calib: the primary face as alignedFaceCrop crops it for calibration and evaluation (the centre
  // crop when there is none), labelled with the identity; any other detected face joins unlabelled.
  for (const path of calib) {
    const file = relative(dataDir, path);
    const image = await decodeImage(path);
    const all = await detector.detect(image);
    const primary = primaryFace(all, image.width, image.height);
    const crop = primary
      ? await alignFace(image, primary.keypoints, FACEREC_TEMPLATE)
      : await centreCrop(image, FACEREC_TEMPLATE.size);
    entries.push({
      file,
      face: primary ? all.indexOf(primary) : -1,
      person: file.split('/')[2],
      detected: !!primary,
    });
    crops.push(crop.rgb);
    for (const [k, f] of all.entries()) {
      if (f === primary) continue;
      entries.push({ file, face: k, person: null, detected: true });
      crops.push((await alignFace(image, f.keypoints, FACEREC_TEMPLATE)).rgb);
    }
    progress.tick();
  }
  // faces/: every detected face (group photos included); images without one add nothing.
  for (const path of faces) {
    const file = relative(dataDir, path);
    const image = await decodeImage(path);
    const found = await detector.detect(image);
    if (found.length === 0) skipped.push(file);
    for (const [k, f] of found.entries()) {
      entries.push({ file, face: k, person: null, detected: true });
      crops.push((await alignFace(image, f.keypoints, FACEREC_TEMPLATE)).rgb);
    }
    progress.tick();
  }
  progress.done();

  const plane = size * size;
  const teacher = new Float32Array(crops.length * 128);
  const batch = 16;
  for (let i = 0; i < crops.length; i += batch) {
    const part = crops.slice(i, i + batch);
    const data = new Float32Array(part.length * 3 * plane);
    part.forEach((c, n) => {
      rgbToNchw(c, size, input.mean, input.std, data, n * 3 * plane);
    });
    const out = await embedder.engine.run({
      [input.name]: { data, dims: [part.length, 3, size, size] },
    });
    teacher.set(out[embedder.manifest.outputs[0].name].data, i * 128);
  }
  await embedder.engine.close();

  writeFileSync(join(outDir, 'crops.u8'), Buffer.concat(crops));
  writeFileSync(join(outDir, 'teacher.f32'), new Uint8Array(teacher.buffer));
  const index = {
    size,
    count: crops.length,
    folders: ['lfw/calib', 'faces'],
    lfwDevUsed: false,
    detector: 'blazeface fp32',
    teacher: `${embedder.manifest.name} fp32 (${embedder.manifest.sha256.slice(0, 12)})`,
    images: { 'lfw/calib': calib.length, faces: faces.length, facesWithoutDetection: skipped.length },
    crops: entries,
  };
  writeFileSync(join(outDir, 'index.json'), JSON.stringify(index));
  const byPerson = entries.filter((e) => e.person !== null).length;
  console.log(
    `${crops.length} crops (${byPerson} labelled lfw/calib, ${entries.filter((e) => !e.detected).length} centre-cropped) ` +
      `from ${calib.length} calib + ${faces.length} faces/ images (${skipped.length} without a face) -> ${outDir}`,
  );
}

try {
  await main();
} catch (e) {
  console.error(`export-crops: ${(e as Error).message}`);
  process.exitCode = 1;
}
