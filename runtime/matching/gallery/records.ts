// What the gallery file stores, checked before it is written: person names, model references, unit-length
// embeddings and face crops, and the byte layout of a stored embedding.

import type { ModelRef } from '../../events/schema.ts';

export const EMBEDDING_DIM = 128;
/** Side of the aligned RGB face crop (FaceRecognitionNet's 150x150 dlib chip). */
export const CROP_SIZE = 150;
export const CROP_BYTES = CROP_SIZE * CROP_SIZE * 3;
export const MAX_NAME_LENGTH = 64;

export class GalleryError extends Error {
  override readonly name = 'GalleryError';
}

/** The stored form of a person's name (NFC), or a GalleryError saying why it is not acceptable. */
export function normalizePersonName(name: unknown): string {
  if (typeof name !== 'string') throw new GalleryError('person name must be a string');
  const nfc = name.normalize('NFC');
  const length = [...nfc].length;
  if (length < 1 || length > MAX_NAME_LENGTH)
    throw new GalleryError(`person name must be 1-${MAX_NAME_LENGTH} characters, got ${length}`);
  // Names travel as MQTT topic levels and in events: same rules as device and camera ids.
  if (/[+#/]/.test(nfc)) throw new GalleryError(`person name ${JSON.stringify(nfc)} contains + # or /`);
  if (/[\p{Cc}\p{Cs}\u2028\u2029]/u.test(nfc))
    throw new GalleryError(`person name ${JSON.stringify(nfc)} contains control characters`);
  if (nfc.trim() !== nfc)
    throw new GalleryError(`person name ${JSON.stringify(nfc)} has leading or trailing whitespace`);
  return nfc;
}

export function checkModel(model: ModelRef): void {
  for (const field of ['name', 'version'] as const) {
    const value = model?.[field];
    if (typeof value !== 'string' || value.length < 1 || value.length > 128)
      throw new GalleryError(`model ${field} must be a string of 1-128 characters`);
  }
}

export function modelLabel(model: ModelRef): string {
  return `${model.name}@${model.version}`;
}

export function checkEmbedding(v: unknown, what: string): asserts v is Float32Array {
  if (!(v instanceof Float32Array) || v.length !== EMBEDDING_DIM)
    throw new GalleryError(`${what}: expected a Float32Array of ${EMBEDDING_DIM} values`);
  let sum = 0;
  for (const x of v) sum += x * x;
  // Cosine similarity is a plain dot product only between unit vectors.
  if (!(Math.abs(Math.sqrt(sum) - 1) < 1e-3))
    throw new GalleryError(`${what}: embedding is not unit length (norm ${Math.sqrt(sum)})`);
}

// Explicit little-endian, so a gallery file (or backup) means the same on any host.
export function encodeVector(v: Float32Array): Buffer {
  const buf = Buffer.allocUnsafe(EMBEDDING_DIM * 4);
  for (let i = 0; i < EMBEDDING_DIM; i++) buf.writeFloatLE(v[i], i * 4);
  return buf;
}

export function decodeVector(buf: Buffer, into: Float32Array, offset: number): void {
  for (let i = 0; i < EMBEDDING_DIM; i++) into[offset + i] = buf.readFloatLE(i * 4);
}
