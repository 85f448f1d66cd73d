/**
 * The identity of recurring jobs: the type id of a schedule and the tag of the schedule store. A leaf, read by every
 * internal module of `JobSchedule` and `SqlJobSchedule`.
 */
import * as Context from "effect/Context"
import type { ScheduleStore } from "../../JobSchedule.js"

/** @internal */
export const TypeId: unique symbol = Symbol.for("@bulwark/resilience/JobSchedule")

/** @internal */
export const storeTag = Context.GenericTag<ScheduleStore>("@bulwark/resilience/JobSchedule/ScheduleStore")
