/**
 * The rules of the house (README, "Architecture"): which room of src/ may import which. Every
 * import, type-only ones included, must match one `allowed` entry; anything else, and any
 * cycle, fails `npm run lint`. A change to this table is a change to the README's table.
 */
const room = (name, mayImport) => ({
  from: { path: `^src/${name}` },
  to: { path: `^src/(${[name, ...mayImport].join('|')})` },
});

/** room -> the rooms it may import (its own files always). */
const TABLE = {
  'errors\\.ts': [],
  config: ['errors\\.ts'],
  numbers: [],
  numbering: ['errors\\.ts', 'numbers'],
  // The Redis backend's keys are part of the one keyspace.
  registry: ['errors\\.ts', 'numbers', 'state'],
  // The certificate cache shares certificates through Redis under a key of the keyspace.
  shaken: ['errors\\.ts', 'state'],
  state: ['errors\\.ts'],
  scoring: ['numbers', 'registry', 'shaken'],
  calls: ['errors\\.ts', 'numbers', 'numbering', 'registry', 'shaken', 'state', 'scoring'],
  usecases: ['errors\\.ts', 'numbers', 'registry', 'state', 'scoring'],
  ops: ['errors\\.ts', 'config', 'state', 'scoring', 'shaken', 'registry'],
  http: ['errors\\.ts', 'config', 'numbers', 'registry', 'shaken', 'state', 'scoring', 'calls', 'usecases', 'ops'],
  'app\\.ts': ['errors\\.ts', 'config', 'numbers', 'numbering', 'registry', 'shaken', 'state', 'scoring', 'calls', 'usecases', 'ops', 'http', 'composition'],
  composition: ['errors\\.ts', 'config', 'numbers', 'numbering', 'registry', 'shaken', 'state', 'scoring', 'calls', 'usecases', 'ops'],
  'server\\.ts': ['errors\\.ts', 'config', 'ops', 'app\\.ts'],
};

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'rooms and files import one way', from: {}, to: { circular: true } },
  ],
  allowed: [
    // Node's own modules and installed packages.
    { from: {}, to: { dependencyTypes: ['core'] } },
    { from: {}, to: { path: 'node_modules' } },
    ...Object.entries(TABLE).map(([name, mayImport]) => room(name, mayImport)),
  ],
  allowedSeverity: 'error',
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '\\.json$' },
    // Packages that name their entry points in package.json "exports" (csv-parse/sync).
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['require', 'node', 'default'] },
  },
};
