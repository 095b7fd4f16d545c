// app/update: a new release of facegate itself, handed to release.sh once downloaded and verified.

import type { AppUpdateRequest, AppUpdateResult } from '../../service/app-update.ts';
import type { Awaitable } from '../../types.ts';
import type { CommandHandlers } from '../api.ts';

export interface AppPort {
  /** Downloads and verifies the bundle and stages it for installation; throws with the reason otherwise. */
  update(request: AppUpdateRequest): Awaitable<AppUpdateResult>;
}

export function appHandlers(app: AppPort): Pick<CommandHandlers, 'app/update'> {
  return {
    'app/update': ({ url, sha256, bytes }) => app.update({ url, sha256, bytes }),
  };
}
