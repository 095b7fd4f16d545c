import { defineConfig } from 'vitest/config';

// npm run test:reliability: power cuts, broker/camera/disk faults, fuzzing, a short soak and the fleet.
export default defineConfig({
  test: {
    include: ['test/reliability/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 300_000,
    fileParallelism: false,
    globalSetup: ['test/setup/models.ts'],
  },
});
