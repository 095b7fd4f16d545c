// The faces behind the latest events, in memory only: what face/reject and face/enroll `fromEvent` act on
// ("that face is not this person", "add this face to that person"). Bounded, oldest out first; a restart
// forgets them, as an event's face is only kept on the device while someone may still correct it.
import type { FaceEvent, ModelRef } from '../events/schema.ts';

/**
 * Faces kept per event: its own track's, and those of the tracks its cooldown covered (512 bytes each; a
 * 30 s visit at 10 fps).
 */
const MAX_EMBEDDINGS_PER_EVENT = 300;

export interface RecentFace {
  /** The event as published (no snapshot). */
  event: Omit<FaceEvent, 'snapshot'>;
  model: ModelRef;
  /** Embeddings of the track's frames that voted for the event's identity (all its frames for unknown). */
  embeddings: Float32Array[];
  /** The track's best frame: its aligned crop (CROP_BYTES RGB) and embedding. */
  best: { crop: Buffer; embedding: Float32Array; quality: number };
}

export class RecentFaces {
  private readonly faces = new Map<string, RecentFace>();
  private readonly listeners = new Set<(face: RecentFace) => void>();

  constructor(private readonly capacity = 100) {}

  add(face: RecentFace): void {
    this.faces.set(face.event.id, face);
    while (this.faces.size > this.capacity) this.faces.delete(this.faces.keys().next().value as string);
    for (const listener of this.listeners) listener(face);
  }

  /** The face of event `id`, or an error saying it is not (or no longer) known. */
  get(id: string): RecentFace {
    const face = this.faces.get(id);
    if (!face)
      throw new Error(
        `event ${id} is not among the last ${this.capacity} events of this device (or it restarted since)`,
      );
    return face;
  }

  /**
   * Adds faces of a track recognised as `identity` (after its announcement, or within the cooldown of an
   * earlier one) to the newest event of `camera` that announced `identity`: a face/reject covers them too.
   */
  attach(camera: string, identity: string, embeddings: readonly Float32Array[]): void {
    const announced = this.list().find(
      (f) => f.event.camera === camera && f.event.type === 'recognized' && f.event.identity === identity,
    );
    if (!announced) return;
    announced.embeddings.push(...embeddings);
    // A person who stays at the door for an hour must not grow it without bound.
    announced.embeddings.splice(0, Math.max(0, announced.embeddings.length - MAX_EMBEDDINGS_PER_EVENT));
  }

  /** Newest first. */
  list(): RecentFace[] {
    return [...this.faces.values()].reverse();
  }

  /** Called with every face added; returns the function that stops it. */
  subscribe(listener: (face: RecentFace) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
