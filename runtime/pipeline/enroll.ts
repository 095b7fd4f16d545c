// Enrolment from photos: exactly one face per photo, aligned and embedded as the camera path does.
// Shared by `facegate enroll`, the demo seed and the MQTT face/enroll command.
import { readdirSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import type { Gallery } from '../matching/gallery/index.ts';
import { IMAGE_FILE } from '../util/face-folder.ts';
import { decodeImage } from '../vision/image.ts';
import type { FaceAnalyzer } from './analyzer.ts';

export class EnrollError extends Error {
  override readonly name = 'EnrollError';
}

export interface EnrollPhoto {
  /** File name or another label for error messages and the gallery's `source`. */
  source: string;
  data: Buffer | string;
}

/** Enrols every photo or none: a photo without exactly one face fails the whole request, clearly. */
export async function enrollPhotos(
  analyzer: FaceAnalyzer,
  gallery: Gallery,
  name: string,
  photos: EnrollPhoto[],
): Promise<{ added: number }> {
  if (photos.length === 0) throw new EnrollError('no photos given');
  const entries = [];
  for (const photo of photos) {
    const image = await decodeImage(photo.data);
    const faces = await analyzer.detect(image);
    if (faces.length === 0) throw new EnrollError(`${photo.source}: no face found`);
    if (faces.length > 1)
      throw new EnrollError(`${photo.source}: ${faces.length} faces found; enrol from a photo of one person`);
    const crop = await analyzer.align(image, faces[0]);
    const [embedding] = await analyzer.embed([crop]);
    entries.push({ embedding, crop, source: photo.source });
  }
  const { added } = gallery.enroll(name, entries, analyzer.modelRef);
  return { added };
}

/** Enrols `<dir>/<person>.(jpg|png)` into an empty gallery; returns the names enrolled. */
export async function seedGallery(analyzer: FaceAnalyzer, gallery: Gallery, dir: string): Promise<string[]> {
  if (gallery.list().length > 0) return [];
  const names: string[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => IMAGE_FILE.test(f))
    .sort()) {
    const name = basename(file, extname(file));
    await enrollPhotos(analyzer, gallery, name, [{ source: file, data: join(dir, file) }]);
    names.push(name);
  }
  return names;
}
