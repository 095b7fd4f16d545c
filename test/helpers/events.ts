// Face events for the queue tests, told apart by their track id alone.
import { buildEvent, type FaceEvent } from '../../runtime/events/schema.ts';

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
