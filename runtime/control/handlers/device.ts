// health, snapshot and restart: the device as a whole.

import type { Awaitable } from '../../types.ts';
import type { CommandHandlers, HealthReport } from '../api.ts';

export interface DevicePort {
  health(): Awaitable<HealthReport>;
  /** JPEG of the latest frame of `camera`, or of the first camera when absent; throws for an unknown one. */
  snapshot(camera?: string): Awaitable<{ camera: string; jpeg: Buffer }>;
  /** Publishes JPEG bytes on <base>/<device>/snapshot. */
  publishSnapshot(jpeg: Buffer): Awaitable<void>;
  /** Restarts facegate; called once the response is out. */
  restart(): Awaitable<void>;
}

export function deviceHandlers(device: DevicePort): Pick<CommandHandlers, 'health' | 'snapshot' | 'restart'> {
  return {
    health: () => device.health(),
    snapshot: async ({ camera: wanted, publish }) => {
      const { camera, jpeg } = await device.snapshot(wanted);
      if (!publish) return { camera, bytes: jpeg.length, image: jpeg.toString('base64') };
      await device.publishSnapshot(jpeg);
      return { camera, bytes: jpeg.length, published: true };
    },
    restart: (_request, context) => {
      context.afterResponse(() => device.restart());
      return { restarting: true };
    },
  };
}
