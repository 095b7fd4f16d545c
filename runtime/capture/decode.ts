// Still-image decoding shared by the images source and MJPEG cameras.
import sharp from 'sharp';

export interface DecodedImage {
  rgb: Buffer;
  width: number;
  height: number;
}

/**
 * Decodes a JPEG/PNG to packed RGB that fits inside width×height, keeping the aspect ratio (faces
 * must not be stretched) and never enlarging (upscaling adds pixels to process, not detail).
 * Truncated or corrupt data throws: sharp fails on libjpeg/libpng warnings by default.
 */
export async function decodeImage(
  input: Buffer | string,
  width: number,
  height: number,
): Promise<DecodedImage> {
  const { data, info } = await sharp(input)
    .rotate() // honours EXIF orientation of phone photos
    .resize(width, height, { fit: 'inside', withoutEnlargement: true })
    .removeAlpha()
    .toColourspace('srgb') // greyscale becomes three channels
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
  return { rgb: data, width: info.width, height: info.height };
}
