import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // npm run test:reliability runs these (fault injection, fuzzing, soak, fleet: minutes, not seconds).
    exclude: [...configDefaults.exclude, 'test/reliability/**'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // Model-heavy suites share two cores; running files one at a time keeps timings sane.
    fileParallelism: false,
    globalSetup: ['test/setup/models.ts'],
  },
});
