/**
 * The Redis the tests share with everything else on the machine (127.0.0.1:6379), so never flushed: every key a
 * test writes starts with its run's prefix, `bulwark-test:<run id>:`, followed by a part unique to the test (see
 * `prefix`), and the test deletes what it wrote. The run's global teardown (`global-setup.ts`) fails the run when
 * any key under the run's prefix remains.
 *
 * No vitest imports here: the global setup, which runs outside any test, uses this module too.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { Redis } from "ioredis"
import { randomBytes } from "node:crypto"

export const connection = { host: "127.0.0.1", port: 6379 } as const

/**
 * The variable the global setup sets to the run's id; every process the run starts inherits it. A file run
 * without that setup gets an id of its own.
 */
export const RUN_VARIABLE = "BULWARK_TEST_RUN"

const runId = process.env[RUN_VARIABLE] ?? `adhoc-${process.pid}-${randomBytes(4).toString("hex")}`

/** The prefix of every key of the run `id`. */
export const runPrefix = (id: string): string => `bulwark-test:${id}:`

/** A prefix of this run's that no other caller gets: `bulwark-test:<run id>:<label>:<pid>-<random>:`. */
export const prefix = (label: string): string =>
  `${runPrefix(runId)}${label}:${process.pid}-${randomBytes(4).toString("hex")}:`

/** A connection, answering PING; rejects with the client's error when Redis does not answer. */
export const open = async (): Promise<Redis> => {
  const client = new Redis({
    ...connection,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    connectTimeout: 2_000
  })
  client.on("error", () => undefined)
  try {
    await client.connect()
    await client.ping()
    return client
  } catch (cause) {
    client.disconnect()
    throw cause
  }
}

/** An admin connection for a test; fails, naming the address, when Redis does not answer. */
export const connect = (): Promise<Redis> =>
  open().catch((cause: unknown) => {
    throw new Error(
      `This test needs Redis on ${connection.host}:${connection.port} and could not reach it: ${String(cause)}`
    )
  })

/** The keys under `keyPrefix` (SCAN, so Redis is not blocked however many keys it holds). */
export const keysUnder = async (client: Redis, keyPrefix: string): Promise<ReadonlyArray<string>> => {
  const found: Array<string> = []
  let cursor = "0"
  do {
    const [next, keys] = await client.scan(cursor, "MATCH", `${escapeGlob(keyPrefix)}*`, "COUNT", 1000)
    found.push(...keys)
    cursor = next
  } while (cursor !== "0")
  return found
}

/** Deletes the keys under `keyPrefix` (never FLUSHDB: the Redis is shared); answers how many there were. */
export const deleteKeys = async (client: Redis, keyPrefix: string): Promise<number> => {
  const keys = await keysUnder(client, keyPrefix)
  for (let i = 0; i < keys.length; i += 500) await client.unlink(...keys.slice(i, i + 500))
  return keys.length
}

/** For an `afterAll`: deletes the keys under `keyPrefix`, then closes the admin connection. */
export const cleanUp = async (client: Redis | undefined, keyPrefix: string): Promise<void> => {
  if (client === undefined) return
  try {
    await deleteKeys(client, keyPrefix)
  } finally {
    await client.quit()
  }
}

/** A fresh `prefix(label)`, whose keys are deleted when the scope closes. */
export const scopedPrefix = (label: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => prefix(label)),
    (keyPrefix) => Effect.promise(() => connect().then((client) => cleanUp(client, keyPrefix)))
  )

/** `prefix` as a SCAN pattern matching itself only (the run id and labels are plain, but a glob must not leak). */
const escapeGlob = (text: string): string => text.replace(/[*?[\]\\]/g, (character) => `\\${character}`)
