// How long importing a module takes in a fresh process: node import-time.mjs <specifier>
const started = performance.now()
await import(process.argv[2])
console.log((performance.now() - started).toFixed(2))
