/**
 * A TCP proxy in front of the tests' Redis that a test can cut and restore: how a breaker loses its shared store
 * without touching the Redis everything else on the machine shares.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { connect as connectSocket, createServer, type Server, type Socket } from "node:net"
import * as TestRedis from "../support/redis.js"

export interface Proxy {
  readonly port: number
  /** Refuses new connections and drops the open ones (as a Redis that went away). */
  readonly cut: Effect.Effect<void>
  /** Accepts connections again, on the same port. */
  readonly restore: Effect.Effect<void>
}

const listen = (server: Server, port: number): Promise<number> =>
  new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject)
      const address = server.address()
      resolve(typeof address === "object" && address !== null ? address.port : port)
    })
  })

/** A proxy to 127.0.0.1:6379 on a free port, closed with the scope. */
export const make: Effect.Effect<Proxy, never, Scope.Scope> = Effect.gen(function*() {
  const sockets = new Set<Socket>()
  const serve = () =>
    createServer((client) => {
      const upstream = connectSocket(TestRedis.connection.port, TestRedis.connection.host)
      for (const socket of [client, upstream]) {
        sockets.add(socket)
        socket.on("error", () => undefined)
        socket.on("close", () => {
          sockets.delete(socket)
          client.destroy()
          upstream.destroy()
        })
      }
      client.pipe(upstream)
      upstream.pipe(client)
    })
  let server = serve()
  const port = yield* Effect.promise(() => listen(server, 0))
  const drop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve())
      for (const socket of sockets) socket.destroy()
    })
  yield* Effect.addFinalizer(() => Effect.promise(drop))
  return {
    port,
    cut: Effect.promise(drop),
    restore: Effect.promise(async () => {
      server = serve()
      await listen(server, port)
    })
  }
})
