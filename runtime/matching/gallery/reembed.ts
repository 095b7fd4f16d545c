// Re-embedding: when the embedder changes, every stored embedding is recomputed from its face crop, so
// nobody has to enrol again (vectors of different models are not comparable). The crops go only to the
// local embedder passed in.

import type { Database } from 'better-sqlite3';
import type { ModelRef } from '../../events/schema.ts';
import type { Matcher } from './matcher.ts';
import { checkEmbedding, checkModel, encodeVector, GalleryError, modelLabel } from './records.ts';

interface PendingRow {
  id: number;
  name: string;
  model_name: string;
  model_version: string;
  has_crop: number;
}

/**
 * Re-computes every embedding not made by `model` from its stored crop with `embed`, in place, and
 * returns how many were converted. All or nothing: it refuses to start while any of them lacks a crop,
 * and writes only after `embed` succeeded for all of them.
 */
export async function reembed(
  db: Database,
  matcher: Matcher,
  model: ModelRef,
  embed: (crop: Buffer) => Promise<Float32Array>,
): Promise<number> {
  checkModel(model);
  const pendingRows = db.prepare<[modelName: string, modelVersion: string], PendingRow>(
    `SELECT e.id, p.name, e.model_name, e.model_version, e.crop IS NOT NULL AS has_crop
     FROM embeddings e JOIN people p ON p.id = e.person_id
     WHERE NOT (e.model_name = ? AND e.model_version = ?) ORDER BY p.name, e.id`,
  );
  const cropOf = db.prepare<[id: number], Buffer | null>('SELECT crop FROM embeddings WHERE id = ?').pluck();
  const replace = db.prepare(
    `UPDATE embeddings SET vector = ?, model_name = ?, model_version = ?
     WHERE id = ? AND model_name = ? AND model_version = ?`,
  );
  let converted = 0;
  // Another pass picks up embeddings enrolled with an old model while the embedder was running.
  for (;;) {
    const pending = pendingRows.all(model.name, model.version);
    if (pending.length === 0) return converted;
    const cropless = pending.filter((row) => !row.has_crop);
    if (cropless.length > 0) {
      const who = [...new Set(cropless.map((row) => row.name))].join(', ');
      throw new GalleryError(
        `cannot re-embed for ${modelLabel(model)}: ${cropless.length} embedding(s) have no stored face crop ` +
          `(${who}); enrol these people again from photos, or remove them, then retry`,
      );
    }
    const vectors: (Buffer | null)[] = [];
    for (const row of pending) {
      // One crop in memory at a time: a large gallery's crops need not fit in RAM together.
      const crop = cropOf.get(row.id);
      if (!crop) {
        vectors.push(null);
        continue;
      }
      const vector = await embed(crop);
      checkEmbedding(vector, `reembed ${row.name}: embedder output`);
      vectors.push(encodeVector(vector));
    }
    converted += db
      .transaction(() => {
        let changed = 0;
        pending.forEach((row, i) => {
          const vector = vectors[i];
          if (vector === null) return;
          changed += replace.run(
            vector,
            model.name,
            model.version,
            row.id,
            row.model_name,
            row.model_version,
          ).changes;
        });
        return changed;
      })
      .immediate();
    matcher.forget();
  }
}
