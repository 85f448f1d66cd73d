/**
 * `npm run lint` runs this: no module of the packages may reach itself again through value imports.
 * Type-only imports are left out (`tsPreCompilationDeps: false`): the compiler erases them, so they load nothing
 * and cannot make a module read another before it is initialised. Internals import their public module type-only
 * (as Effect's own sources do); `node ../shared/tools/import-cycles.mjs` is the same check from outside.
 */
/** @type {import("dependency-cruiser").IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-value-import-cycle",
      severity: "error",
      comment: "A value-import cycle: move the shared type id, tag or error into a leaf module, or import the public module type-only.",
      from: { path: "^packages/[^/]+/src/" },
      to: { circular: true }
    }
  ],
  options: {
    includeOnly: "^packages/[^/]+/src/",
    exclude: { path: "\\.test\\.ts$" },
    tsPreCompilationDeps: false,
    tsConfig: { fileName: "tsconfig.base.json" },
    enhancedResolveOptions: { conditionNames: ["bulwark-source", "import", "default"] }
  }
}
