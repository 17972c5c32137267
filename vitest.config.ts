import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // integration suites start their own PostgreSQL clusters and Kinesis servers; forks keep them apart
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 120_000
  }
})
