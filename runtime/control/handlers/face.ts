// face/list, face/remove, face/enroll, face/reject and the unknown visitors, over whatever stores the
// gallery.

import type { Awaitable } from '../../types.ts';
import type { CommandHandlers, FaceSummary, UnknownSummary } from '../api.ts';

export interface GalleryPort {
  list(): Awaitable<FaceSummary[]>;
  /** False when nobody of that name is enrolled. */
  remove(name: string): Awaitable<boolean>;
  /**
   * Adds one embedding per image (JPEG or PNG bytes) to `name`, enrolling them if new; throws, adding
   * nothing, when an image holds no usable face.
   */
  enroll(name: string, images: Buffer[]): Awaitable<{ added: number }>;
  /** Enrols an unknown visitor's kept faces as `name` and forgets the visitor. */
  enrollFromUnknown(name: string, unknownId: string): Awaitable<{ added: number }>;
  /** Adds the face behind a recent event to `name`. */
  enrollFromEvent(name: string, eventId: string): Awaitable<{ added: number }>;
  /** The face of a recent recognized event is not its identity; returns who and how many faces were stored. */
  reject(eventId: string): Awaitable<{ identity: string; negatives: number }>;
  unknowns(): Awaitable<UnknownSummary[]>;
  /** False when there was no such visitor. */
  dismiss(unknownId: string): Awaitable<boolean>;
}

const JPEG = Buffer.from([0xff, 0xd8, 0xff]);
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function faceHandlers(
  gallery: GalleryPort,
): Pick<
  CommandHandlers,
  'face/list' | 'face/remove' | 'face/enroll' | 'face/reject' | 'face/unknowns' | 'face/dismiss'
> {
  return {
    'face/list': async () => ({ faces: await gallery.list() }),
    'face/remove': async ({ name }) => ({ name, removed: await gallery.remove(name) }),
    'face/enroll': async (request) => {
      const { name } = request;
      const { added } =
        'fromUnknown' in request
          ? await gallery.enrollFromUnknown(name, request.fromUnknown)
          : 'fromEvent' in request
            ? await gallery.enrollFromEvent(name, request.fromEvent)
            : await gallery.enroll(name, request.images.map(decodeImage));
      return { name, added };
    },
    'face/reject': async ({ event }) => ({ event, ...(await gallery.reject(event)) }),
    'face/unknowns': async () => ({ unknowns: await gallery.unknowns() }),
    'face/dismiss': async ({ unknown }) => ({ unknown, removed: await gallery.dismiss(unknown) }),
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
