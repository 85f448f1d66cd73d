/**
 * A real three-master Redis Cluster for one test file: `redis-server --cluster-enabled yes` processes on free
 * loopback ports, each in its own directory of a temporary folder, the slots split as `redis-cli --cluster create`
 * splits them and joined with `CLUSTER MEET`. No replicas: a killed master leaves its slots uncovered, so the
 * cluster is down (`CLUSTERDOWN`) until it is restarted, with the same port and `nodes.conf`, and rejoins.
 *
 * The processes are children of the test (`process.ts`), so they inherit the run's marker and the global teardown
 * fails the run if one is left behind; `stop` kills them and removes the folder. Fails, never skips, when
 * `redis-server` is not on PATH.
 */
import { Cluster, Redis } from "ioredis"
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { createServer, type Server } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Process from "./process.js"

const HOST = "127.0.0.1"
/** The slot ranges of the three masters, as `redis-cli --cluster create` assigns them. */
export const SLOT_RANGES: ReadonlyArray<readonly [number, number]> = [[0, 5460], [5461, 10922], [10923, 16383]]
const WAIT_MILLIS = 20_000
const POLL_MILLIS = 25

export interface Node {
  readonly host: string
  readonly port: number
}

export interface TestCluster {
  /** The three masters, in slot order: node `i` owns `SLOT_RANGES[i]`. */
  readonly nodes: ReadonlyArray<Node>
  /** The index of the node owning `key`'s slot (asked of Redis: `CLUSTER KEYSLOT`). */
  readonly nodeOf: (key: string) => Promise<number>
  /** A connection to node `i` alone (closed by `stop`). */
  readonly node: (index: number) => Redis
  /** A Cluster client (closed by `stop`). */
  readonly admin: Cluster
  /** SIGKILLs node `i` and waits until it is gone. */
  readonly kill: (index: number) => Promise<void>
  /** Starts node `i` again (same port, same `nodes.conf`) and waits until the cluster is ok again. */
  readonly restart: (index: number) => Promise<void>
  /** Resolves once every running node reports `cluster_state:<state>`. */
  readonly waitForState: (state: "ok" | "fail") => Promise<void>
  /** Kills every node, closes the connections and removes the folder. */
  readonly stop: () => Promise<void>
}

const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))

/** `count` distinct free loopback ports (all bound at once, then released). */
const freePorts = async (count: number): Promise<ReadonlyArray<number>> => {
  const servers = await Promise.all(Array.from({ length: count }, () =>
    new Promise<Server>((resolve, reject) => {
      const server = createServer()
      server.once("error", reject)
      server.listen(0, HOST, () => resolve(server))
    })))
  const ports = servers.map((server) => {
    const address = server.address()
    if (typeof address !== "object" || address === null) throw new Error("no port")
    return address.port
  })
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
  return ports
}

const connectNode = (port: number): Redis => {
  const client = new Redis({
    host: HOST,
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => 50,
    connectTimeout: 2_000
  })
  client.on("error", () => undefined)
  return client
}

/** Retries `attempt` until it answers true, every POLL_MILLIS, failing with `what` after WAIT_MILLIS. */
const poll = async (what: string, attempt: () => Promise<boolean>): Promise<void> => {
  const deadline = Date.now() + WAIT_MILLIS
  let last: unknown = undefined
  while (Date.now() < deadline) {
    try {
      if (await attempt()) return
    } catch (cause) {
      last = cause
    }
    await sleep(POLL_MILLIS)
  }
  throw new Error(`Redis Cluster: ${what} within ${WAIT_MILLIS} ms${last instanceof Error ? ` (${last.message})` : ""}`)
}

/** Starts the cluster; fails with the servers' output when it does not come up. */
export const start = async (): Promise<TestCluster> => {
  const directory = mkdtempSync(join(tmpdir(), "bulwark-redis-cluster-"))
  const ports = await freePorts(6)
  const nodes: ReadonlyArray<Node> = [0, 1, 2].map((i) => ({ host: HOST, port: ports[i] ?? 0 }))
  const busPorts = ports.slice(3)
  const children: Array<Process.Child | undefined> = [undefined, undefined, undefined]
  const connections: Array<Redis> = []
  let admin: Cluster | undefined

  const spawnNode = async (index: number): Promise<void> => {
    const dir = join(directory, `node-${index}`)
    mkdirSync(dir, { recursive: true })
    const settings: ReadonlyArray<readonly [string, string]> = [
      ["port", String(nodes[index]?.port)],
      ["bind", HOST],
      ["cluster-enabled", "yes"],
      ["cluster-port", String(busPorts[index])],
      ["cluster-config-file", "nodes.conf"],
      // A dead master is failed (and the cluster down) a second or two after it dies.
      ["cluster-node-timeout", "1000"],
      ["dir", dir],
      ["save", ""],
      ["appendonly", "no"],
      ["daemonize", "no"],
      ["protected-mode", "no"]
    ]
    const child = Process.start("redis-server", settings.flatMap(([name, value]) => [`--${name}`, value]))
    children[index] = child
    await child.waitFor(/Ready to accept connections/, { timeoutMillis: WAIT_MILLIS }).catch((cause: unknown) => {
      const missing = /ENOENT/.test(String(cause))
      throw new Error(
        missing
          ? "The Redis Cluster tests need redis-server on PATH (Debian: apt-get install redis-server)"
          : `redis-server on port ${nodes[index]?.port} did not start: ${String(cause)}`
      )
    })
  }

  const node = (index: number): Redis => {
    const client = connectNode(nodes[index]?.port ?? 0)
    connections.push(client)
    return client
  }

  const running = () => [0, 1, 2].filter((i) => children[i]?.exit() === undefined)

  const waitForState = async (state: "ok" | "fail") => {
    const clients = running().map(node)
    try {
      await poll(`every node reports cluster_state:${state}`, async () => {
        const infos = await Promise.all(clients.map((client) => client.cluster("INFO")))
        return infos.every((info) => info.includes(`cluster_state:${state}`))
      })
    } finally {
      clients.forEach((client) => client.disconnect())
    }
  }

  const stop = async () => {
    admin?.disconnect()
    connections.forEach((client) => client.disconnect())
    await Promise.all(children.map(async (child) => {
      child?.kill("SIGKILL")
      await child?.exited
    }))
    rmSync(directory, { recursive: true, force: true })
  }

  try {
    await Promise.all([0, 1, 2].map(spawnNode))
    const setup = [0, 1, 2].map(node)
    await Promise.all(setup.map(async (client, i) => {
      const [from, to] = SLOT_RANGES[i] ?? [0, 0]
      await client.call("CLUSTER", "SET-CONFIG-EPOCH", String(i + 1))
      await client.call("CLUSTER", "ADDSLOTSRANGE", String(from), String(to))
    }))
    // With `cluster-port`, MEET must name the bus port (it would assume port + 10000).
    const [seed] = setup
    if (seed === undefined) throw new Error("no seed node")
    await Promise.all(
      [1, 2].map((i) => seed.call("CLUSTER", "MEET", HOST, String(nodes[i]?.port), String(busPorts[i])))
    )
    await waitForState("ok")
    setup.forEach((client) => client.disconnect())
    admin = new Cluster(nodes.map((n) => ({ ...n })), { lazyConnect: true })
    admin.on("error", () => undefined)
    await admin.connect()
  } catch (cause) {
    const output = children.map((child, i) => `--- node ${i}\n${child?.output().slice(-2_000) ?? ""}`).join("\n")
    await stop()
    throw new Error(`${String(cause)}\n${output}`)
  }
  const ready = admin

  const first = node(0)
  return {
    nodes,
    node,
    admin: ready,
    nodeOf: async (key) => {
      const slot = Number(await first.cluster("KEYSLOT", key))
      return SLOT_RANGES.findIndex(([from, to]) => slot >= from && slot <= to)
    },
    kill: async (index) => {
      const child = children[index]
      child?.kill("SIGKILL")
      await child?.exited
    },
    restart: async (index) => {
      await spawnNode(index)
      await waitForState("ok")
    },
    waitForState,
    stop
  }
}
