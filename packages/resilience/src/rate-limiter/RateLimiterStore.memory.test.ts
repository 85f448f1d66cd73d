import { storeContract } from "./RateLimiter.contract.js"
import * as RateLimiter from "./RateLimiter.js"

storeContract("memory", () => RateLimiter.layerMemory())
