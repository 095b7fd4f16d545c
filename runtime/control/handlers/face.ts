// face/list, face/remove and face/enroll, over whatever stores the gallery.

import type { Awaitable, CommandHandlers, FaceSummary } from '../api.ts';

export interface GalleryPort {
  list(): Awaitable<FaceSummary[]>;
  /** False when nobody of that name is enrolled. */
  remove(name: string): Awaitable<boolean>;
  /**
   * Adds one embedding per image (JPEG or PNG bytes) to `name`, enrolling them if new; throws, adding
   * nothing, when an image holds no usable face.
   */
  enroll(name: string, images: Buffer[]): Awaitable<{ added: number }>;
}

const JPEG = Buffer.from([0xff, 0xd8, 0xff]);
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function faceHandlers(
  gallery: GalleryPort,
): Pick<CommandHandlers, 'face/list' | 'face/remove' | 'face/enroll'> {
  return {
    'face/list': async () => ({ faces: await gallery.list() }),
    'face/remove': async ({ name }) => ({ name, removed: await gallery.remove(name) }),
    'face/enroll': async ({ name, images }) => {
      const { added } = await gallery.enroll(name, images.map(decodeImage));
      return { name, added };
    },
  };
}

function decodeImage(base64: string, index: number): Buffer {
  const bytes = Buffer.from(base64, 'base64');
  // Buffer.from skips characters outside the alphabet and accepts base64url; only canonical base64
  // survives the round trip, so anything mangled on the way is refused instead of half-decoded.
  if (bytes.toString('base64') !== base64) throw new Error(`images[${index}] is not valid base64`);
  if (!startsWith(bytes, JPEG) && !startsWith(bytes, PNG)) {
    throw new Error(`images[${index}] is neither a JPEG nor a PNG`);
  }
  return bytes;
}

function startsWith(bytes: Buffer, magic: Buffer): boolean {
  return bytes.length >= magic.length && bytes.subarray(0, magic.length).equals(magic);
}
