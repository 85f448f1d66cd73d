/**
 * The store tag, in a leaf module: the limiter and both stores import it, and
 * `RateLimiter.ts` re-exports it unchanged.
 */
import * as Context from "effect/Context"
import type { Store } from "../RateLimiter.js"

/**
 * The store limiters are made with.
 *
 * @since 0.1.0
 * @category Stores
 */
export class RateLimiterStore extends Context.Tag("@bulwark/resilience/RateLimiter/Store")<RateLimiterStore, Store>() {}
