// model/update, model/rollback and model/status, over the model updater.

import type { Awaitable, CommandHandlers, CommandParams, ModelStatus, ModelUpdateResult } from '../api.ts';

export interface ModelPort {
  /** Checks the manifest and, when it offers newer signed models, installs and health-checks them. */
  update(request: CommandParams['model/update']): Promise<ModelUpdateResult>;
  /** Returns to the previous model set; throws when there is none. */
  rollback(): Promise<ModelStatus>;
  status(): Awaitable<ModelStatus>;
}

export function modelHandlers(
  models: ModelPort,
): Pick<CommandHandlers, 'model/update' | 'model/rollback' | 'model/status'> {
  return {
    'model/update': ({ manifestUrl }) => models.update(manifestUrl === undefined ? {} : { manifestUrl }),
    'model/rollback': () => models.rollback(),
    'model/status': () => models.status(),
  };
}
