/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.(t|j)s$': ['@swc/jest'] },
  // @fastify/static (behind @fastify/swagger-ui) requires content-disposition@3, which is ESM-only:
  // let swc turn it into CommonJS instead of pinning an old, unmaintained major.
  transformIgnorePatterns: ['/node_modules/(?!content-disposition/)'],
  testTimeout: 20000,
  // Every log line the tests' apps write is held to the logging rules (test/setup/log-lines.ts).
  setupFilesAfterEnv: ['<rootDir>/test/setup/log-lines.ts'],
};
