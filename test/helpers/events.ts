// Face events for the queue tests, told apart by their track id (and the fields a test adds).
import { buildEvent, type FaceEvent, type FaceEventInput } from '../../runtime/events/schema.ts';

/** The door camera's `unknown` event of track `trackId`, with what a test adds (a snapshot, a time). Without
 * extras, every such event of a one-digit track id has the same size. */
export function unknownEvent(trackId: number, extra: Partial<FaceEventInput> = {}): FaceEvent {
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
