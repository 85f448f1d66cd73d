/** The in-memory store passes the stores' conformance suite. */
import * as RateLimiter from "@bulwark/resilience/RateLimiter"
import { storeContract } from "./conformance.js"

storeContract("memory", () => RateLimiter.layerMemory())
