import * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type * as Chaos from "../Chaos.js"
import { SwitchTypeId } from "./chaos.js"

class SwitchImpl implements Chaos.Switch {
  readonly [SwitchTypeId]: typeof SwitchTypeId = SwitchTypeId
  readonly isOn: Effect.Effect<boolean>
  readonly turnOn: Effect.Effect<void>
  readonly turnOff: Effect.Effect<void>
  readonly toggle: Effect.Effect<boolean>
  readonly changes: Stream.Stream<boolean>

  constructor(private readonly ref: SubscriptionRef.SubscriptionRef<boolean>) {
    this.isOn = SubscriptionRef.get(ref)
    this.turnOn = SubscriptionRef.set(ref, true)
    this.turnOff = SubscriptionRef.set(ref, false)
    this.toggle = SubscriptionRef.updateAndGet(ref, (on) => !on)
    this.changes = ref.changes
  }

  set(on: boolean): Effect.Effect<void> {
    return SubscriptionRef.set(this.ref, on)
  }
}

/** @internal */
export const makeSwitch = (initial: boolean): Effect.Effect<Chaos.Switch> =>
  Effect.map(SubscriptionRef.make(initial), (ref) => new SwitchImpl(ref))
