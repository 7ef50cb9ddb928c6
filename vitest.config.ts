import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['agent/**/*.test.ts', 'controller/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Namespace tests share the kernel's netns list and sshd ports; run files one at a time
    // in one fork each, so every test owns what it creates.
    pool: 'forks',
    fileParallelism: false,
  },
});
