// model/update, model/chunk, model/rollback and model/status, over the model updater.

import type { Awaitable } from '../../types.ts';
import type {
  ChunkReceipt,
  CommandHandlers,
  CommandParams,
  ModelChunk,
  ModelStatus,
  ModelUpdateResult,
} from '../api.ts';

export interface ModelPort {
  /**
   * Checks the manifest and, when it offers a new signed model, installs and health-checks it. A request
   * with a `transfer` opens it before returning its promise (chunks may follow at once); `signal` aborts
   * the wait for chunks.
   */
  update(request: CommandParams['model/update'], signal?: AbortSignal): Promise<ModelUpdateResult>;
  /** Hands one chunk to the transfer in progress; throws with the reason when it cannot take it. */
  chunk(chunk: ModelChunk): Awaitable<ChunkReceipt>;
  /** Returns to the previous model set; throws when there is none. */
  rollback(): Promise<ModelStatus>;
  status(): Awaitable<ModelStatus>;
}

export function modelHandlers(
  models: ModelPort,
): Pick<CommandHandlers, 'model/update' | 'model/chunk' | 'model/rollback' | 'model/status'> {
  return {
    'model/update': (request, { signal }) => {
      if ('manifest' in request) {
        if ('manifestUrl' in request)
          throw new Error(
            'give either manifestUrl, or manifest with transfer (the model in chunks); not both',
          );
        return models.update({ manifest: request.manifest, transfer: request.transfer }, signal);
      }
      const { manifestUrl } = request;
      return models.update(manifestUrl === undefined ? {} : { manifestUrl }, signal);
    },
    'model/chunk': ({ id, index, total, data }) => models.chunk({ id, index, total, data }),
    'model/rollback': () => models.rollback(),
    'model/status': () => models.status(),
  };
}
