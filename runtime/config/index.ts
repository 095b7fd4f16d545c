// Public API of the configuration subsystem.

export { type CameraSettings, cameraSettings, checkTargetFars } from './camera.ts';
export { type ChangeClassification, classifyChange, LIVE_KEYS } from './changes.ts';
export {
  CONFIG_DIR,
  carryEnvOverrides,
  type EnvOverride,
  envOverrides,
  envOverridesTouchedBy,
  type LoadConfigOptions,
  listBoards,
  loadConfig,
  NON_CONFIG_ENV_VARS,
  withoutEnvOverrides,
} from './load.ts';
export { mergeConfig } from './merge.ts';
export { PATH_SETTINGS, protectedChanges, TRUST_SETTINGS } from './protected.ts';
export { REDACTED, redactSecrets } from './redact.ts';
export { saveConfigAtomic } from './save.ts';
export * from './schema.ts';
export { ConfigError, isLoopback, type ValidationResult, validateConfig } from './validate.ts';
