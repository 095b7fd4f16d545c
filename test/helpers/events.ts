// Face events for the queue tests, told apart by their track id (and the fields a test adds).
import { buildEvent, type FaceEvent, type FaceEventInput } from '../../runtime/events/schema.ts';

/** An `unknown` event of track `trackId`; for one-digit track ids every such event has the same size. */
export function unknownEvent(trackId: number): FaceEvent {
  return buildEvent({
    camera: 'front',
    type: 'unknown',
    score: 0.4,
    box: [1, 2, 3, 4],
    trackId,
    model: { name: 'm', version: '1' },
  });
}

/** The door camera's `unknown` event of track `trackId`, with what a test adds (a snapshot, a time). */
export function doorEvent(trackId: number, extra: Partial<FaceEventInput> = {}): FaceEvent {
  return buildEvent({
    camera: 'door',
    type: 'unknown',
    score: 0.5,
    box: [1, 2, 3, 4],
    trackId,
    model: { name: 'facerec', version: '1.0.0' },
    ...extra,
  });
}
