import { describe, expect, it } from 'vitest';
import { boxIou, FaceTracker } from '../../../runtime/matching/tracker.ts';
import type { Box } from '../../../runtime/types.ts';
import type { FaceDetection } from '../../../runtime/vision/types.ts';

const OPTIONS = { trackIou: 0.3, trackMaxAgeMs: 1500 };

function face(x: number, y: number, size = 100): FaceDetection {
  return { box: [x, y, size, size], score: 0.9, keypoints: [] };
}

describe('boxIou', () => {
  it('is overlap over union', () => {
    expect(boxIou([0, 0, 10, 10], [0, 0, 10, 10])).toBe(1);
    expect(boxIou([0, 0, 10, 10], [5, 0, 10, 10])).toBeCloseTo(50 / 150, 12);
    expect(boxIou([0, 0, 10, 10], [10, 0, 10, 10])).toBe(0);
  });
});

describe('FaceTracker', () => {
  it('keeps the id of a face moving across frames', () => {
    const tracker = new FaceTracker(OPTIONS);
    const ids: number[] = [];
    const isNew: boolean[] = [];
    for (let f = 0; f < 20; f++) {
      // 15 px per frame: IoU with the previous box stays ~0.74, while the face crosses 300 px.
      const { faces, ended } = tracker.update([face(100 + 15 * f, 200)], f * 100);
      expect(ended).toEqual([]);
      expect(faces).toHaveLength(1);
      ids.push(faces[0].trackId);
      isNew.push(faces[0].isNew);
    }
    expect(new Set(ids)).toEqual(new Set([ids[0]]));
    expect(isNew).toEqual([true, ...Array(19).fill(false)]);
  });

  it('gives two faces two ids and keeps them apart when they swap input order', () => {
    const tracker = new FaceTracker(OPTIONS);
    const first = tracker.update([face(0, 0), face(400, 0)], 0).faces;
    expect(first.map((f) => f.isNew)).toEqual([true, true]);
    expect(first[0].trackId).not.toBe(first[1].trackId);
    const next = tracker.update([face(390, 5), face(10, 5)], 100).faces;
    expect(next.map((f) => f.trackId)).toEqual([first[1].trackId, first[0].trackId]);
    expect(next.map((f) => f.isNew)).toEqual([false, false]);
  });

  it('gives each track at most one detection, the best-overlapping one', () => {
    const tracker = new FaceTracker(OPTIONS);
    const [a] = tracker.update([face(0, 0)], 0).faces;
    const { faces } = tracker.update([face(40, 0), face(5, 0)], 100);
    expect(faces[1]).toMatchObject({ trackId: a.trackId, isNew: false });
    expect(faces[0].isNew).toBe(true);
    expect(faces[0].trackId).toBeGreaterThan(a.trackId);
  });

  it('assigns by best overlap overall, not in the order tracks were created', () => {
    const tracker = new FaceTracker(OPTIONS);
    const [a, b] = tracker.update([face(0, 0), face(60, 0)], 0).faces;
    // The first detection overlaps a (0.43) but b more (0.67); the second is exactly where a was.
    const { faces } = tracker.update([face(40, 0), face(0, 0)], 100);
    expect(faces.map((f) => [f.trackId, f.isNew])).toEqual([
      [b.trackId, false],
      [a.trackId, false],
    ]);
  });

  it('starts a new track after a gap longer than the maximum age, and reports the ended one', () => {
    const tracker = new FaceTracker(OPTIONS);
    const [a] = tracker.update([face(0, 0)], 1000).faces;
    // A gap of exactly the maximum age still continues the track.
    expect(tracker.update([], 2000).ended).toEqual([]);
    expect(tracker.update([face(0, 0)], 2500).faces[0]).toMatchObject({ trackId: a.trackId, isNew: false });
    const later = tracker.update([face(0, 0)], 4001);
    expect(later.faces[0].isNew).toBe(true);
    expect(later.faces[0].trackId).toBe(a.trackId + 1);
    const box: Box = [0, 0, 100, 100];
    expect(later.ended).toEqual([
      { trackId: a.trackId, box, firstSeenMs: 1000, lastSeenMs: 2500, frames: 2 },
    ]);
  });

  it('does not continue a track from a detection that does not overlap enough', () => {
    const tracker = new FaceTracker(OPTIONS);
    const [a] = tracker.update([face(0, 0)], 0).faces;
    // IoU 50*100 / (2*100*100 - 50*100) = 1/3 continues at 0.3; 60 px apart gives 0.25, a new track.
    expect(tracker.update([face(50, 0)], 100).faces[0].trackId).toBe(a.trackId);
    expect(tracker.update([face(110, 0)], 200).faces[0].isNew).toBe(true);
  });

  it('numbers tracks monotonically per tracker and ends them all on request', () => {
    const camA = new FaceTracker(OPTIONS);
    const camB = new FaceTracker(OPTIONS);
    expect(camA.update([face(0, 0), face(300, 0)], 0).faces.map((f) => f.trackId)).toEqual([1, 2]);
    expect(camB.update([face(0, 0)], 0).faces.map((f) => f.trackId)).toEqual([1]);
    expect(camA.endAll().map((t) => t.trackId)).toEqual([1, 2]);
    expect(camA.update([face(0, 0)], 10).faces[0].trackId).toBe(3);
    expect(() => camA.update([], Number.NaN)).toThrow(RangeError);
    expect(() => new FaceTracker({ trackIou: 1.5, trackMaxAgeMs: 100 })).toThrow(RangeError);
  });

  it('ends every track when the clock steps back, instead of keeping them alive until it catches up', () => {
    const tracker = new FaceTracker(OPTIONS);
    const [a] = tracker.update([face(0, 0)], 1_000_000).faces;
    const { faces, ended } = tracker.update([face(0, 0)], 1_000);
    expect(ended.map((t) => t.trackId)).toEqual([a.trackId]);
    expect(faces[0]).toMatchObject({ trackId: a.trackId + 1, isNew: true });
    // Ages count from the new time on.
    expect(tracker.update([face(0, 0)], 2_000).faces[0].trackId).toBe(a.trackId + 1);
    expect(tracker.update([face(0, 0)], 3_501).ended.map((t) => t.trackId)).toEqual([a.trackId + 1]);
  });
});
