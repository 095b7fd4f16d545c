import { describe, expect, it } from 'vitest';
import {
  buildTracks,
  type DecisionSettings,
  type OpenSetData,
  scoreTracks,
} from '../../../runtime/eval/openset.ts';
import { towards } from '../matching/helpers.ts';

const MODEL = { name: 'facerec', version: '1.0.0' };
const GOOD = { size: 100, sharpness: 500, yaw: 0, roll: 0 };
const SETTINGS: DecisionSettings = {
  k: 2,
  n: 3,
  gates: { minSize: 40, minSharpness: 20, maxYaw: 35, maxRoll: 25 },
  rules: { margin: 0, weakBelowEmbeddings: 0, weakRaise: 0, qualityRaise: 0 },
  gallerySize: 2,
  probesPerPerson: 10,
  seed: 1,
};

/** An image of person `axis` whose frames all have cosine `cosine` with the person's axis. */
function image(person: string, axis: number, cosine: number, file: string) {
  return {
    person,
    file,
    frames: [
      towards(axis, 1),
      towards(axis, cosine, 100),
      towards(axis, cosine, 101),
      towards(axis, cosine, 102),
    ].map((embedding) => ({ embedding, quality: GOOD })),
  };
}

describe('eval openset', () => {
  it('counts stranger tracks taken for someone and genuine tracks recognised, per threshold', () => {
    const data: OpenSetData = {
      model: MODEL,
      noFace: 0,
      images: [
        // Two people with two images: one enrols, the other is a genuine track (cosine 0.95 to the enrolled one).
        image('alice', 0, 1, 'alice/1'),
        image('alice', 0, 0.95, 'alice/2'),
        image('bob', 10, 1, 'bob/1'),
        image('bob', 10, 0.9, 'bob/2'),
        // A stranger who looks like alice (0.93) and one like nobody.
        image('carol', 0, 0.93, 'carol/1'),
        image('dave', 50, 1, 'dave/1'),
      ],
    };
    const splits = buildTracks(data, SETTINGS);
    expect(splits).toHaveLength(1);
    const at = (threshold: number) => scoreTracks(splits, SETTINGS, { threshold, ...SETTINGS.rules });
    // Frames of carol's track score about 0.93 against alice: let in below that, kept out above.
    expect(at(0.85)).toMatchObject({ strangerTracks: 2, falseAccepts: 1, genuineTracks: 2, recognized: 2 });
    expect(at(0.85).faPer1000).toBe(500);
    expect(at(0.92)).toMatchObject({ falseAccepts: 1, recognized: 1, recognitionRate: 0.5 });
    expect(at(0.94)).toMatchObject({ falseAccepts: 0, recognized: 1 });
    expect(at(0.96)).toMatchObject({ falseAccepts: 0, recognized: 0, misidentified: 0 });
  });
});
