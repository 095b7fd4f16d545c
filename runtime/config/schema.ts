// The shape of a validated configuration, derived from the schema (./json-schema.ts) so the two cannot
// drift. One part is written out: a camera source's fields depend on its kind through the schema's
// if/then rules, which FromSchema does not follow; test/unit/config checks the union against the schema.

import type { FromSchema } from 'json-schema-to-ts';
import { CONFIG_JSON_SCHEMA } from './json-schema.ts';

type SchemaConfig = FromSchema<typeof CONFIG_JSON_SCHEMA>;
/** A camera as the schema's properties describe it, each source field optional whatever the kind. */
export type SchemaCamera = SchemaConfig['cameras'][number];

export type SourceKind = SchemaCamera['source']['kind'];

/** Each kind carries only the fields it uses, as the schema's if/then rules enforce. */
export type CameraSource =
  | { kind: 'images' | 'video'; path: string; loop?: boolean; realtime?: boolean }
  | { kind: 'rtsp' | 'http'; url: string }
  | { kind: 'v4l2'; device: string }
  | { kind: 'rpicam' | 'jetson-csi'; sensorId?: number };

export type CameraConfig = Omit<SchemaCamera, 'source'> & { source: CameraSource };
/** Merged over the global settings for a camera (cameraSettings in runtime/config/camera.ts). */
export type CameraOverrides = NonNullable<CameraConfig['overrides']>;

export type Config = Omit<SchemaConfig, 'cameras'> & { cameras: CameraConfig[] };
export type ModelsConfig = Config['models'];
export type ModelUpdateConfig = ModelsConfig['update'];
export type MqttConfig = Config['mqtt'];

export const CONFIG_KEYS: readonly (keyof Config)[] = CONFIG_JSON_SCHEMA.required;
