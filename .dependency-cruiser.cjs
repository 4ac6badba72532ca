// Dependencies point one way (npm test runs this):
//   events ← model ← engine ← {sim, check, store, analysis, import} ← app ← cli
// A module may import from its own layer's directory and from the layers to its left; the peers in
// braces do not import each other, with two exceptions that are part of what they are:
// - sim → check: the recorded stream of a simulated run carries the checkers' findings as events,
//   so the simulation runs with the checkers (it hands them to the engine's pipeline as its Judge);
// - analysis → sim: minimize and perturb re-run the simulation.
// Type-only imports count too.
const peers = ['sim', 'check', 'store', 'analysis', 'import'];
const allowedPeer = { sim: ['check'], analysis: ['sim'] };
const src = (dirs) => `^src/(${dirs.join('|')})/`;

module.exports = {
  forbidden: [
    // the simulation's actor modules take the Sim as a parameter type while sim.ts calls them: a cycle
    // of types only, which does not exist at run time; any other cycle is an error
    { name: 'no-circular', severity: 'error', comment: 'a cycle has no direction', from: { path: '^(src|cli)/' }, to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } } },
    { name: 'events-imports-nothing', severity: 'error', from: { path: src(['events']) }, to: { path: `${src(['model', 'engine', ...peers, 'app'])}|^cli/` } },
    { name: 'model-imports-only-events', severity: 'error', from: { path: src(['model']) }, to: { path: `${src(['engine', ...peers, 'app'])}|^cli/` } },
    { name: 'engine-imports-only-model-and-events', severity: 'error', from: { path: src(['engine']) }, to: { path: `${src([...peers, 'app'])}|^cli/` } },
    ...peers.map((p) => ({
      name: `${p}-does-not-import-its-peers`,
      severity: 'error',
      from: { path: src([p]) },
      to: { path: `${src([...peers.filter((q) => q !== p && !(allowedPeer[p] ?? []).includes(q)), 'app'])}|^cli/` },
    })),
    { name: 'app-does-not-import-cli', severity: 'error', from: { path: src(['app']) }, to: { path: '^cli/' } },
    { name: 'src-does-not-import-tests-or-bench', severity: 'error', from: { path: '^(src|cli)/' }, to: { path: '^(test|bench)/' } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
