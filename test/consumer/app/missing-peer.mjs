// Imports a subpath whose optional peer (ioredis) is not installed: the import must fail naming it.
try {
  await import("@bulwark/resilience/RedisRateLimiter")
  console.log("imported")
} catch (error) {
  console.log(JSON.stringify({ code: error.code, message: error.message }))
}
