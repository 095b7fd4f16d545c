import { describe, expect, it } from 'vitest';
import { buildEvent } from '../../../runtime/events/schema.ts';
import {
  type Decision,
  DecisionEngine,
  type DecisionOptions,
  type TrackResult,
} from '../../../runtime/matching/decision.ts';

const BASE: DecisionOptions = { k: 3, n: 5, unknownAfterFrames: 100, cooldownSeconds: 30 };

type Frame = string | null | { id: string | null; score?: number; attack?: number };

/** Feeds one track's frames, 100 ms apart from `t0`; returns [frame index, decision] for each decision. */
function feed(engine: DecisionEngine, trackId: number, frames: Frame[], t0 = 0): [number, Decision][] {
  const out: [number, Decision][] = [];
  frames.forEach((frame, i) => {
    const f = typeof frame === 'object' && frame !== null ? frame : { id: frame };
    const result: TrackResult = {
      trackId,
      box: [10 + i, 20, 100, 120],
      identity: f.id,
      score: f.score ?? (f.id === null ? 0.5 : 0.95),
      ...(f.attack !== undefined ? { attack: { detected: true, score: f.attack } } : {}),
    };
    const decision = engine.observe(result, t0 + 100 * i);
    if (decision) out.push([i, decision]);
  });
  return out;
}

describe('DecisionEngine', () => {
  it('recognises when 2 of the last 3 results agree, and not before', () => {
    const opts = { ...BASE, k: 2, n: 3 };
    expect(feed(new DecisionEngine(opts), 1, ['A', null, 'A'])).toEqual([
      [
        2,
        { type: 'recognized', identity: 'A', score: 0.95, box: [12, 20, 100, 120], trackId: 1, timeMs: 200 },
      ],
    ]);
    expect(feed(new DecisionEngine(opts), 1, ['A', 'B', 'A']).map(([i, d]) => [i, d.identity])).toEqual([
      [2, 'A'],
    ]);
    // The first A has left the window of 3 by the time the second arrives.
    expect(feed(new DecisionEngine(opts), 1, ['A', null, null, 'A', 'B', null, null, 'B'])).toEqual([]);
    expect(feed(new DecisionEngine(opts), 1, ['A', 'A']).map(([i]) => i)).toEqual([1]);
  });

  it('recognises when 3 of the last 5 agree, with the mean of the agreeing scores', () => {
    const opts = { ...BASE, k: 3, n: 5 };
    const [[at, d]] = feed(new DecisionEngine(opts), 7, [
      { id: 'A', score: 0.93 },
      { id: 'B', score: 0.99 },
      { id: 'A', score: 0.95 },
      null,
      { id: 'A', score: 0.97 },
    ]);
    expect(at).toBe(4);
    expect(d).toMatchObject({ type: 'recognized', identity: 'A', trackId: 7, box: [14, 20, 100, 120] });
    expect(d.score).toBeCloseTo(0.95, 12);
    // Windows: [A,B,B,-,A] and [B,B,-,A,A] have two As; [B,-,A,A,A] has three.
    expect(
      feed(new DecisionEngine(opts), 1, ['A', 'A', 'B', 'B', null, 'A', 'A', 'A']).map(([i]) => i),
    ).toEqual([7]);
    expect(feed(new DecisionEngine(opts), 1, ['A', 'B', 'A', 'B', null, 'A', 'B', null])).toEqual([]);
  });

  it('announces a track once as unknown when its results disagree, scored by how far from agreement', () => {
    const opts = { ...BASE, k: 3, n: 5, unknownAfterFrames: 5 };
    const decisions = feed(new DecisionEngine(opts), 3, ['A', 'B', 'C', 'A', 'B', 'C', 'A', 'B', 'C', 'A']);
    expect(decisions).toHaveLength(1);
    const [at, d] = decisions[0];
    expect(at).toBe(4);
    expect(d).toMatchObject({ type: 'unknown', identity: null, trackId: 3, timeMs: 400 });
    expect(d.score).toBeCloseTo(1 - 2 / 5, 12);

    const strangers = feed(new DecisionEngine(opts), 4, [null, null, null, null, null, null]);
    expect(strangers.map(([i, x]) => [i, x.type, x.score])).toEqual([[4, 'unknown', 1]]);
  });

  it('still recognises a track that was announced unknown when it later agrees', () => {
    const opts = { ...BASE, k: 2, n: 3, unknownAfterFrames: 3 };
    const decisions = feed(new DecisionEngine(opts), 1, [null, null, null, 'A', 'A', 'A']);
    expect(decisions.map(([i, d]) => [i, d.type, d.identity])).toEqual([
      [2, 'unknown', null],
      [4, 'recognized', 'A'],
    ]);
  });

  it('recognises a track only once', () => {
    const engine = new DecisionEngine({ ...BASE, k: 2, n: 3, unknownAfterFrames: 4, cooldownSeconds: 0 });
    const decisions = feed(engine, 1, ['A', 'A', 'A', 'A', 'B', 'B', 'B', null, null, null, null, null]);
    expect(decisions.map(([i, d]) => [i, d.type])).toEqual([[1, 'recognized']]);
  });

  it('suppresses the same person from a new track within the cooldown, per identity', () => {
    const engine = new DecisionEngine({ ...BASE, k: 2, n: 3, unknownAfterFrames: 4, cooldownSeconds: 30 });
    expect(feed(engine, 1, ['A', 'A'], 0).map(([, d]) => d.identity)).toEqual(['A']); // at 100 ms
    engine.endTrack(1);
    // Recognised again 20 s later from a new track: no event, and the track does not turn unknown.
    expect(feed(engine, 2, ['A', 'A', null, null, null, null], 20_000)).toEqual([]);
    // It was still recognised, silently: what the announcement of track 1 stands for.
    expect(engine.recognizedAs(2)).toBe('A');
    expect(engine.recognizedAs(1)).toBeNull(); // ended
    // Someone else is not held back by A's cooldown.
    expect(feed(engine, 3, ['B', 'B'], 20_000).map(([, d]) => d.identity)).toEqual(['B']);
    // 29.999 s after the announcement: still suppressed; 30 s after: announced again.
    expect(feed(engine, 4, ['A', 'A'], 30_000 - 1)).toEqual([]);
    expect(feed(engine, 5, ['A', 'A'], 30_000).map(([, d]) => [d.identity, d.timeMs])).toEqual([
      ['A', 30_100],
    ]);
    // A clock stepped back an hour does not hold A back for an hour.
    expect(feed(engine, 6, ['A', 'A'], 30_000 - 3_600_000).map(([, d]) => d.identity)).toEqual(['A']);
  });

  it('announces a spoof when the attack check fails on k of n frames, and then never recognises the track', () => {
    const engine = new DecisionEngine({ ...BASE, k: 2, n: 3, unknownAfterFrames: 4 });
    const decisions = feed(engine, 9, [
      { id: 'A', attack: 0.8 },
      { id: 'A', attack: 0.6 },
      'A',
      'A',
      'A',
      null,
      null,
      null,
    ]);
    expect(decisions).toHaveLength(1);
    const [at, d] = decisions[0];
    expect(at).toBe(1);
    expect(d).toMatchObject({ type: 'spoof', identity: 'A', trackId: 9 });
    expect(d.score).toBeCloseTo(0.7, 12);

    const nobody = feed(new DecisionEngine({ ...BASE, k: 2, n: 3 }), 1, [
      { id: null, attack: 0.9 },
      { id: null, attack: 0.9 },
    ]);
    expect(nobody.map(([, x]) => [x.type, x.identity])).toEqual([['spoof', null]]);
  });

  it('does not let frames that failed the attack check vote for an identity', () => {
    const opts = { ...BASE, k: 2, n: 3 };
    // One failed frame of three is not a spoof, but the A it matched does not count.
    const decisions = feed(new DecisionEngine(opts), 1, [{ id: 'A', attack: 0.9 }, 'A', 'B', 'A']);
    expect(decisions.map(([i, d]) => [i, d.type, d.identity])).toEqual([[3, 'recognized', 'A']]);
  });

  it('names the identity a spoof presented by majority, ties going to the higher mean score', () => {
    const opts = { ...BASE, k: 2, n: 3 };
    const tie = feed(new DecisionEngine(opts), 1, [
      { id: 'A', score: 0.91, attack: 0.9 },
      { id: 'B', score: 0.96, attack: 0.9 },
    ]);
    expect(tie.map(([, d]) => d.identity)).toEqual(['B']);
    const majority = feed(new DecisionEngine({ ...opts, k: 3, n: 3 }), 1, [
      { id: 'A', score: 0.91, attack: 0.9 },
      { id: 'B', score: 0.99, attack: 0.9 },
      { id: 'A', score: 0.92, attack: 0.9 },
    ]);
    expect(majority.map(([, d]) => d.identity)).toEqual(['A']);
  });

  it('is deterministic and forgets ended tracks', () => {
    const frames: Frame[] = ['A', null, 'B', 'A', { id: 'A', attack: 0.7 }, 'A', null, 'A'];
    const opts = { ...BASE, unknownAfterFrames: 3 };
    expect(feed(new DecisionEngine(opts), 1, frames)).toEqual(feed(new DecisionEngine(opts), 1, frames));
    const engine = new DecisionEngine({ ...opts, cooldownSeconds: 0 });
    expect(feed(engine, 1, ['A', 'A', 'A'])).toHaveLength(1);
    engine.endTrack(1);
    expect(feed(engine, 1, ['A', 'A', 'A'])).toHaveLength(1);
  });

  it('produces decisions that make valid events', () => {
    const engine = new DecisionEngine({ ...BASE, k: 1, n: 1, unknownAfterFrames: 1 });
    const decisions = [
      ...feed(engine, 1, [{ id: 'A', score: 1.0000001 }]),
      ...feed(engine, 2, [null]),
      ...feed(engine, 3, [{ id: 'B', attack: 1 }]),
    ].map(([, d]) => d);
    expect(decisions.map((d) => d.type)).toEqual(['recognized', 'unknown', 'spoof']);
    for (const d of decisions) {
      const event = buildEvent({ ...d, camera: 'front-door', model: { name: 'facerec', version: '1.0.0' } });
      expect(event.score).toBeLessThanOrEqual(1);
    }
  });

  it('refuses inconsistent options', () => {
    expect(() => new DecisionEngine({ ...BASE, k: 6, n: 5 })).toThrow(RangeError);
    expect(() => new DecisionEngine({ ...BASE, k: 0 })).toThrow(RangeError);
    expect(() => new DecisionEngine({ ...BASE, unknownAfterFrames: 0 })).toThrow(RangeError);
    expect(() => new DecisionEngine({ ...BASE, cooldownSeconds: -1 })).toThrow(RangeError);
  });
});
