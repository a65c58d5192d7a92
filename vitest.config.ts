import {defineConfig} from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Kernel (netns) tests share the machine's network stack; they run in one worker, one file at a time.
    fileParallelism: true,
    pool: 'forks',
  },
})
