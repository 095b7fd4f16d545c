// A face folder: one sub-folder per person with that person's photos inside. LFW's layout, the
// calibration and evaluation folders of the data set, and the committed photos under test/fixtures/faces.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The photo files facegate reads (sharp decodes these). */
export const IMAGE_FILE = /\.(jpe?g|png)$/i;

export interface FacePhoto {
  person: string;
  /** `<person>/<file name>`, relative to the face folder. */
  file: string;
}

/** Every photo of every person in `dir`, sorted by person then file name (so runs are reproducible). */
export function listFaceFolder(dir: string): FacePhoto[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()
    .flatMap((person) =>
      readdirSync(join(dir, person))
        .filter((f) => IMAGE_FILE.test(f))
        .sort()
        .map((f) => ({ person, file: `${person}/${f}` })),
    );
}
