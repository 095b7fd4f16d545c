// 1:N matching of a face against the enrolled people of one model, on an in-memory matrix of their
// embeddings that is rebuilt only when the gallery changed.

import type { Database, Statement } from 'better-sqlite3';
import type { ModelRef } from '../../events/schema.ts';
import { checkModel, decodeVector, EMBEDDING_DIM, GalleryError } from './records.ts';

export interface Identification {
  /** Best-matching person, or null when their score is not above the threshold. */
  identity: string | null;
  /** Best person's cosine similarity (max over their embeddings); 0 when nobody is enrolled for the model. */
  score: number;
  /** Second-best person, whatever their score. */
  runnerUp?: { identity: string; score: number };
}

export interface PersonMatch {
  identity: string;
  /** Best cosine over this person's embeddings. */
  score: number;
  /** How many embeddings this person has for the model: few means a weak enrolment. */
  embeddings: number;
}

/** The best and second-best enrolled person for a face; both absent when nobody is enrolled. */
export interface Ranking {
  best?: PersonMatch;
  runnerUp?: PersonMatch;
}

/** Embeddings of one model, ordered by person name (one person's rows together). */
export type ModelVectors = Statement<
  [modelName: string, modelVersion: string],
  { name: string; vector: Buffer }
>;

interface MatrixCache {
  model: ModelRef;
  dataVersion: number;
  names: string[];
  /** Rows of person p are starts[p] .. starts[p + 1] - 1. */
  starts: Int32Array;
  matrix: Float32Array;
}

function clampCosine(x: number): number {
  // Float32 rounding can push the dot product of identical unit vectors just past 1.
  return Math.max(-1, Math.min(1, x));
}

export class Matcher {
  private cache: MatrixCache | null = null;
  private readonly dataVersion: Statement<[], number>;

  constructor(
    db: Database,
    private readonly vectors: ModelVectors,
  ) {
    this.dataVersion = db.prepare<[], number>('PRAGMA data_version').pluck();
  }

  /**
   * 1:N identification against the people enrolled with `model`: each person scores the best cosine
   * over their embeddings, and the best person is the identity when that score is strictly above
   * `threshold` (the rule the manifest thresholds were measured with).
   */
  identify(embedding: Float32Array, model: ModelRef, threshold: number): Identification {
    if (!Number.isFinite(threshold))
      throw new GalleryError(`identify: threshold ${threshold} is not a number`);
    const { best, runnerUp } = this.rank(embedding, model);
    if (!best) return { identity: null, score: 0 };
    const result: Identification = {
      identity: best.score > threshold ? best.identity : null,
      score: best.score,
    };
    if (runnerUp) result.runnerUp = { identity: runnerUp.identity, score: runnerUp.score };
    return result;
  }

  /**
   * The two people enrolled with `model` who score highest (best cosine over each one's embeddings),
   * with how many embeddings each has: what the open-set rules of runtime/matching/match.ts decide on.
   */
  rank(embedding: Float32Array, model: ModelRef): Ranking {
    if (!(embedding instanceof Float32Array) || embedding.length !== EMBEDDING_DIM)
      throw new GalleryError(`identify: expected a Float32Array of ${EMBEDDING_DIM} values`);
    const { names, starts, matrix } = this.matrixFor(model);
    let best = -1;
    let bestScore = Number.NEGATIVE_INFINITY;
    let second = -1;
    let secondScore = Number.NEGATIVE_INFINITY;
    for (let p = 0; p < names.length; p++) {
      let personScore = Number.NEGATIVE_INFINITY;
      for (let row = starts[p]; row < starts[p + 1]; row++) {
        const base = row * EMBEDDING_DIM;
        let dot = 0;
        for (let i = 0; i < EMBEDDING_DIM; i++) dot += matrix[base + i] * embedding[i];
        if (dot > personScore) personScore = dot;
      }
      if (personScore > bestScore) {
        second = best;
        secondScore = bestScore;
        best = p;
        bestScore = personScore;
      } else if (personScore > secondScore) {
        second = p;
        secondScore = personScore;
      }
    }
    const match = (p: number, score: number): PersonMatch => ({
      identity: names[p],
      score: clampCosine(score),
      embeddings: starts[p + 1] - starts[p],
    });
    const ranking: Ranking = {};
    if (best >= 0) ranking.best = match(best, bestScore);
    if (second >= 0) ranking.runnerUp = match(second, secondScore);
    return ranking;
  }

  /** Drops the matrix after a write through this connection, which data_version does not count. */
  forget(): void {
    this.cache = null;
  }

  private matrixFor(model: ModelRef): MatrixCache {
    // data_version moves when another connection (e.g. the CLI) commits; our own writes call forget().
    const dataVersion = this.dataVersion.get() as number;
    const cached = this.cache;
    if (
      cached &&
      cached.dataVersion === dataVersion &&
      cached.model.name === model.name &&
      cached.model.version === model.version
    )
      return cached;
    checkModel(model);
    const rows = this.vectors.all(model.name, model.version);
    const matrix = new Float32Array(rows.length * EMBEDDING_DIM);
    const names: string[] = [];
    const starts: number[] = [];
    rows.forEach((row, i) => {
      if (names.at(-1) !== row.name) {
        names.push(row.name);
        starts.push(i);
      }
      decodeVector(row.vector, matrix, i * EMBEDDING_DIM);
    });
    starts.push(rows.length);
    this.cache = {
      model: { name: model.name, version: model.version },
      dataVersion,
      names,
      starts: Int32Array.from(starts),
      matrix,
    };
    return this.cache;
  }
}
