// Door videos made from a still photo with ffmpeg: a person standing at the door for a while, and
// repeated visits (the person, then an empty doorway, then the person again).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const FIT =
  'scale=640:360:force_original_aspect_ratio=decrease,pad=640:360:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=15,format=yuv420p';

/**
 * A 640x360, 15 fps video written to `out`: `visits` times `seconds` of the photo, with `gapSeconds` of a
 * black frame between two visits.
 */
export async function videoOfPhoto(
  photo: string,
  out: string,
  {
    seconds = 3,
    visits = 1,
    gapSeconds = 2,
  }: { seconds?: number; visits?: number; gapSeconds?: number } = {},
): Promise<string> {
  const inputs: string[] = [];
  const parts: string[] = [];
  for (let v = 0; v < visits; v++) {
    if (v > 0) {
      inputs.push('-f', 'lavfi', '-t', String(gapSeconds), '-i', 'color=black:s=640x360:r=15');
      parts.push(`[${parts.length}]${FIT}[p${parts.length}]`);
    }
    inputs.push('-loop', '1', '-t', String(seconds), '-i', photo);
    parts.push(`[${parts.length}]${FIT}[p${parts.length}]`);
  }
  const joined = `${parts.map((_, i) => `[p${i}]`).join('')}concat=n=${parts.length}:v=1:a=0`;
  await run('ffmpeg', [
    '-nostdin',
    '-loglevel',
    'error',
    '-y',
    ...inputs,
    '-filter_complex',
    `${parts.join(';')};${joined}`,
    out,
  ]);
  return out;
}
