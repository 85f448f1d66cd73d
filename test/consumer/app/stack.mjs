// Bad options fail with Bulwark's InvalidOptionsError; with --enable-source-maps its stack points at
// the package's TypeScript source.
import { Effect } from "effect"
import { Bulkhead } from "@bulwark/resilience"

const error = await Effect.runPromise(Effect.flip(Bulkhead.make({ name: "inventory", maxConcurrent: 0 })))
console.log(JSON.stringify({ tag: error._tag, stack: error.stack }))
