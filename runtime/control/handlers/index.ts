// All command handlers, from the ports the application provides.

import type { CommandHandlers } from '../api.ts';
import { type AppPort, appHandlers } from './app.ts';
import { type ConfigPort, configHandlers } from './config.ts';
import { type DevicePort, deviceHandlers } from './device.ts';
import { faceHandlers, type GalleryPort } from './face.ts';
import { type ModelPort, modelHandlers } from './model.ts';

export type { AppPort, ConfigPort, DevicePort, GalleryPort, ModelPort };

export interface ControlPorts {
  config: ConfigPort;
  gallery: GalleryPort;
  models: ModelPort;
  device: DevicePort;
  app: AppPort;
}

export function createHandlers(ports: ControlPorts): CommandHandlers {
  return {
    ...configHandlers(ports.config),
    ...faceHandlers(ports.gallery),
    ...modelHandlers(ports.models),
    ...deviceHandlers(ports.device),
    ...appHandlers(ports.app),
  };
}
