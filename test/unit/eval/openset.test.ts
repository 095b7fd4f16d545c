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
  qualityLimits: { minSize: 40, minSharpness: 20, maxYaw: 35, maxRoll: 25 },
  rules: { margin: 0, weakBelowEmbeddings: 0, weakRaise: 0, qualityRaise: 0 },
  gallerySize: 2,
  probesPerPerson: 10,
  seed: 1,
  tracks: 'still',
  people: 'all',
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

/** The embedded data set of these images (no image without a face). */
function dataOf(images: OpenSetData['images']): OpenSetData {
  return { model: MODEL, noFace: 0, images };
}

describe('eval openset', () => {
  it('counts stranger tracks taken for someone and genuine tracks recognised, per threshold', () => {
    const data = dataOf([
      // Two people with two images: one enrols, the other is a genuine track (cosine 0.95 to the enrolled one).
      image('alice', 0, 1, 'alice/1'),
      image('alice', 0, 0.95, 'alice/2'),
      image('bob', 10, 1, 'bob/1'),
      image('bob', 10, 0.9, 'bob/2'),
      // A stranger who looks like alice (0.93) and one like nobody.
      image('carol', 0, 0.93, 'carol/1'),
      image('dave', 50, 1, 'dave/1'),
    ]);
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

  it('builds a track from several photos of a person, for people with at least k of them', () => {
    // erin's photo i is at cosine 0.90 + 0.01 i from her enrolment in every view: a frame's score says
    // which photo it came from.
    const erin = [0, 1, 2, 3, 4, 5].map((i) => image('erin', 20, 0.9 + 0.01 * i, `erin/${i}`));
    const data = dataOf([...erin, image('frank', 40, 1, 'frank/1'), image('frank', 40, 0.95, 'frank/2')]);
    const scores = (tracks: 'still' | 'photos') =>
      buildTracks(data, { ...SETTINGS, tracks })[0]
        .filter((track) => track.person === 'erin')
        .map((track) => track.frames.map((f) => Number(f.ranking.best?.score.toFixed(3))));
    // erin enrols photos 0-2; photos 3-5 start one track each.
    expect(scores('still')).toEqual([
      [0.93, 0.93, 0.93],
      [0.94, 0.94, 0.94],
      [0.95, 0.95, 0.95],
    ]);
    expect(scores('photos')).toEqual([
      [0.93, 0.94, 0.95],
      [0.94, 0.95, 0.93],
      [0.95, 0.93, 0.94],
    ]);
    // frank has one photo left after enrolment, fewer than k = 2: no photos track.
    const genuine = (tracks: 'still' | 'photos') =>
      buildTracks(data, { ...SETTINGS, tracks })[0].filter((t) => t.person !== null).length;
    expect(genuine('still')).toBe(4);
    expect(genuine('photos')).toBe(3);
  });

  it('splits people into two disjoint halves for tuning and reporting', () => {
    const people = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7'];
    const data = dataOf(
      people.flatMap((p, i) => [image(p, 10 * i, 1, `${p}/1`), image(p, 10 * i, 0.97, `${p}/2`)]),
    );
    const tracked = (half: 'all' | 'tune' | 'report') =>
      new Set(
        buildTracks(data, { ...SETTINGS, people: half }).flatMap((tracks) => tracks.map((t) => t.person)),
      );
    const tune = tracked('tune');
    const report = tracked('report');
    expect([...tune].filter((p) => p !== null && report.has(p))).toEqual([]);
    expect(tune.size + report.size - 2).toBe(people.length);
    expect(tracked('all').size - 1).toBe(people.length);
  });

  it('decides a track by its mean embedding when asked', () => {
    // Each frame of carol's track is 0.93 from alice along a different axis; their mean is closer to her.
    const data = dataOf([
      image('alice', 0, 1, 'alice/1'),
      image('alice', 0, 0.9, 'alice/2'),
      image('carol', 0, 0.93, 'carol/1'),
    ]);
    const settings = { ...SETTINGS, gallerySize: 1 };
    const splits = buildTracks(data, settings);
    const rules = { threshold: 0.95, ...SETTINGS.rules };
    expect(scoreTracks(splits, settings, rules, 'k-of-n')).toMatchObject({ falseAccepts: 0, recognized: 0 });
    // The mean of three frames at 0.93 along different axes is at 0.93 / sqrt(0.93² + 3 (0.37 / 3)²) = 0.975
    // from alice (0.963 for her own 0.9 frames): both pass 0.95.
    expect(scoreTracks(splits, settings, rules, 'mean')).toMatchObject({ falseAccepts: 1, recognized: 1 });
  });
});
