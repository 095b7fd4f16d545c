import { describe, expect, it } from 'vitest';
import { matchFrame, type OpenSetRules } from '../../../runtime/matching/match.ts';

const RULES: OpenSetRules = {
  threshold: 0.9,
  margin: 0.02,
  weakBelowEmbeddings: 2,
  weakRaise: 0.01,
  qualityRaise: 0.04,
};
const alice = (score: number, embeddings = 3) => ({ identity: 'alice', score, embeddings });
const bob = (score: number) => ({ identity: 'bob', score, embeddings: 3 });

describe('matchFrame', () => {
  it('votes for the best person above the threshold, clear of the runner-up', () => {
    expect(matchFrame({ best: alice(0.95), runnerUp: bob(0.5) }, RULES)).toEqual({
      identity: 'alice',
      score: 0.95,
    });
    expect(matchFrame({ best: alice(0.9) }, RULES)).toEqual({ identity: null, score: 0.9 });
    expect(matchFrame({}, RULES)).toEqual({ identity: null, score: 0 });
  });

  it('raises the threshold for a weak enrolment only', () => {
    expect(matchFrame({ best: alice(0.905, 1) }, RULES)).toMatchObject({
      identity: null,
      refused: 'weak-enrolment',
    });
    expect(matchFrame({ best: alice(0.915, 1) }, RULES).identity).toBe('alice');
    expect(matchFrame({ best: alice(0.905, 2) }, RULES).identity).toBe('alice');
  });

  it('asks more of a poor frame, in proportion to how poor it is', () => {
    expect(matchFrame({ best: alice(0.93) }, RULES, 1).identity).toBe('alice');
    expect(matchFrame({ best: alice(0.93) }, RULES, 0.5).identity).toBe('alice'); // needs > 0.92
    expect(matchFrame({ best: alice(0.93) }, RULES, 0)).toMatchObject({ identity: null, refused: 'quality' });
    // Out-of-range qualities are clamped rather than trusted.
    expect(matchFrame({ best: alice(0.93) }, RULES, 7).identity).toBe('alice');
  });

  it('refuses a face between two candidates, or close to a face rejected as the best one', () => {
    expect(matchFrame({ best: alice(0.95), runnerUp: bob(0.94) }, RULES)).toMatchObject({
      identity: null,
      refused: 'margin',
    });
    expect(matchFrame({ best: alice(0.95), runnerUp: bob(0.5) }, RULES, 1, 0.96)).toMatchObject({
      refused: 'margin',
    });
    expect(matchFrame({ best: alice(0.95), runnerUp: bob(0.5) }, RULES, 1, 0.9).identity).toBe('alice');
  });
});
