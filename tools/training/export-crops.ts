// Training data for the ReLU-zero gates (training/gates.py): aligned 150x150 face crops made by the
// runtime's own fp32 detector and alignment, plus the fp32 embedder's raw outputs as the teacher.
// Sources are lfw/calib, the small faces/ sets and faces/extra (CelebA with its identities, UTKFace
// unlabelled); lfw/dev is never read (data README protocol).
//
//   npx tsx tools/training/export-crops.ts [outDir] [--extra N]   (default /tmp/facegate-train, outside the repo)
//   --extra N: the first N images (file order) of each faces/extra set (default 4000; 0: none).
//   FACEGATE_DATA (the face data set, required), FACEGATE_MODELS_DIR as for the rest of the project.
//
// Writes  crops.u8     N x 150 x 150 x 3 packed RGB
//         teacher.f32  N x 128 float32 LE, facerec.fp32 embedding (no mirror, not normalised)
//         index.json   one entry per crop, in file order
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { openModel } from '../../runtime/engine/registry.ts';
import { MODEL_NAMES } from '../../runtime/models/manifest.ts';
import { dataSetDir, modelsDir, PACKAGE_ROOT } from '../../runtime/paths.ts';
import { Progress } from '../../runtime/report/progress.ts';
import { IMAGE_FILE } from '../../runtime/util/face-folder.ts';
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
  /** Identity of the image's primary face (LFW name, or `celeba:<id>`); null for every other crop. */
  person: string | null;
  /** false: no face found, the runtime's centre-crop fallback. */
  detected: boolean;
}

function listImages(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return listImages(path);
      return IMAGE_FILE.test(name) ? [path] : [];
    });
}

/** CelebA's identity file: image name -> `celeba:<id>`. */
function celebaIdentities(path: string): Map<string, string> {
  const ids = new Map<string, string>();
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const [name, id] = line.trim().split(/\s+/);
    if (name && id) ids.set(name, `celeba:${id}`);
  }
  return ids;
}

async function main(): Promise<void> {
  ort.env.logLevel = 'error';
  const args = process.argv.slice(2);
  const extraAt = args.indexOf('--extra');
  const extraArg = extraAt >= 0 ? args.splice(extraAt, 2)[1] : '4000';
  const extraCount = Number(extraArg);
  if (!Number.isInteger(extraCount) || extraCount < 0)
    throw new Error(`--extra takes a whole number of images, got ${extraArg}`);
  const outDir = resolve(args[0] ?? '/tmp/facegate-train');
  const dataSet = dataSetDir('tools/training/export-crops.ts');
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

  const calib = listImages(join(dataSet, 'lfw', 'calib'));
  const faces = listImages(join(dataSet, 'faces')).filter(
    (p) => !relative(dataSet, p).startsWith('faces/extra/'),
  );
  const celebaDir = join(dataSet, 'faces', 'extra', 'celeba');
  const celebaIds = celebaIdentities(join(celebaDir, 'identity_CelebA_000001-010000.txt'));
  const extra = [
    ...listImages(join(celebaDir, 'celebA')).slice(0, extraCount),
    ...listImages(join(dataSet, 'faces', 'extra', 'utkface')).slice(0, extraCount),
  ];
  const entries: CropEntry[] = [];
  const crops: Buffer[] = [];
  const progress = new Progress('export crops', calib.length + faces.length + extra.length);
  const skipped: string[] = [];

  // lfw/calib: the primary face as alignedFaceCrop crops it for calibration and evaluation (the centre
  // crop when there is none), labelled with the identity; any other detected face joins unlabelled.
  for (const path of calib) {
    const file = relative(dataSet, path);
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
    const file = relative(dataSet, path);
    const image = await decodeImage(path);
    const found = await detector.detect(image);
    if (found.length === 0) skipped.push(file);
    for (const [k, f] of found.entries()) {
      entries.push({ file, face: k, person: null, detected: true });
      crops.push((await alignFace(image, f.keypoints, FACEREC_TEMPLATE)).rgb);
    }
    progress.tick();
  }
  // faces/extra: one aligned face per photo (the primary one), CelebA's labelled with its identity.
  for (const path of extra) {
    const file = relative(dataSet, path);
    const image = await decodeImage(path);
    const primary = primaryFace(await detector.detect(image), image.width, image.height);
    if (!primary) skipped.push(file);
    else {
      const name = file.split('/').pop() ?? '';
      entries.push({ file, face: 0, person: celebaIds.get(name) ?? null, detected: true });
      crops.push((await alignFace(image, primary.keypoints, FACEREC_TEMPLATE)).rgb);
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
    folders: ['lfw/calib', 'faces (without extra/)', 'faces/extra/celeba', 'faces/extra/utkface'],
    extraPerSet: extraCount,
    lfwDevUsed: false,
    detector: 'blazeface fp32',
    teacher: `${embedder.manifest.name} fp32 (${embedder.manifest.sha256.slice(0, 12)})`,
    images: {
      'lfw/calib': calib.length,
      faces: faces.length,
      'faces/extra': extra.length,
      withoutDetection: skipped.length,
    },
    withoutDetection: skipped,
    crops: entries,
  };
  writeFileSync(join(outDir, 'index.json'), JSON.stringify(index));
  const byPerson = entries.filter((e) => e.person !== null && !e.person.startsWith('celeba:')).length;
  console.log(
    `${crops.length} crops (${byPerson} labelled lfw/calib, ${entries.filter((e) => !e.detected).length} centre-cropped) ` +
      `from ${calib.length} calib + ${faces.length} faces/ + ${extra.length} faces/extra images (${skipped.length} without a face) -> ${outDir}`,
  );
}

try {
  await main();
} catch (e) {
  console.error(`export-crops: ${(e as Error).message}`);
  process.exitCode = 1;
}
