import { defineConfig } from 'vitest/config';

// Two projects, both run by `npm test`:
//   unit         no models, no services (seconds): `npx vitest run --project unit`
//   integration  real models (built from the committed calibration table first if missing), mosquitto,
//                ffmpeg, ONNX Runtime: `npx vitest run --project integration`
export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // Model-heavy suites share two cores; running files one at a time keeps timings sane.
    fileParallelism: false,
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/setup/models.ts'],
        },
      },
    ],
  },
});
