import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import { problem } from "../../internal/problem.js"
import type * as Chaos from "../Chaos.js"
import { strategy } from "./chaos.js"

const DEFAULT_STATUS = 503

const TITLES: Readonly<Record<number, string>> = {
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout"
}

/** Statuses whose responses cannot carry a body (the WHATWG `Response` constructor throws on one). */
const NULL_BODY = new Set([204, 205, 304])

const statusCheck = (status: number): Chaos.OptionCheck => ({
  option: "status",
  value: status,
  expected: "an integer from 200 to 599",
  valid: Number.isInteger(status) && status >= 200 && status <= 599
})

/** @internal */
export const transportError = <R = never>(
  options: Chaos.TransportErrorOptions<R>
): Chaos.Strategy<HttpClientRequest.HttpClientRequest, never, HttpClientError.RequestError, R> => {
  const description = options.description ?? "connection reset (injected by a chaos policy)"
  return strategy<HttpClientRequest.HttpClientRequest, never, HttpClientError.RequestError, R>(options, {
    kind: "fault",
    error: (request, policy) =>
      new HttpClientError.RequestError({
        request,
        reason: "Transport",
        description,
        cause: new Error(`Chaos policy "${policy}" dropped the connection`)
      })
  })
}

/** @internal */
export const httpResponse = <R = never>(
  options: Chaos.HttpResponseOptions<HttpClientRequest.HttpClientRequest, R>
): Chaos.Strategy<HttpClientRequest.HttpClientRequest, HttpClientResponse.HttpClientResponse, never, R> => {
  const status = options.status ?? DEFAULT_STATUS
  const body = NULL_BODY.has(status) ? null : options.body ?? `${status} (injected by a chaos policy)`
  const headers = options.headers ?? {}
  return strategy<HttpClientRequest.HttpClientRequest, HttpClientResponse.HttpClientResponse, never, R>(
    options,
    {
      kind: "outcome",
      outcome: (request) =>
        Effect.sync(() => HttpClientResponse.fromWeb(request, new Response(body, { status, headers: { ...headers } })))
    },
    [statusCheck(status)]
  )
}

/** @internal */
export const serverResponse = <R = never>(
  options: Chaos.HttpResponseOptions<HttpServerRequest.HttpServerRequest, R>
): Chaos.Strategy<HttpServerRequest.HttpServerRequest, HttpServerResponse.HttpServerResponse, never, R> => {
  const status = options.status ?? DEFAULT_STATUS
  const headers = options.headers ?? {}
  const body = options.body
  const respond = (): HttpServerResponse.HttpServerResponse =>
    NULL_BODY.has(status)
      ? HttpServerResponse.empty({ status, headers })
      : body === undefined
      ? problem(status, TITLES[status] ?? "Injected failure", "Injected by a chaos policy", "about:blank", headers)
      : HttpServerResponse.text(body, { status, headers })
  return strategy<HttpServerRequest.HttpServerRequest, HttpServerResponse.HttpServerResponse, never, R>(
    options,
    { kind: "outcome", outcome: () => Effect.sync(respond) },
    [statusCheck(status)]
  )
}

/** @internal */
export const httpClient = dual(
  2,
  <E, R, E2, R2>(
    client: HttpClient.HttpClient.With<E, R>,
    policy: Chaos.Policy<HttpClientRequest.HttpClientRequest, HttpClientResponse.HttpClientResponse, E2, R2>
  ): HttpClient.HttpClient.With<E | E2, R | R2> =>
    HttpClient.transform(client, (effect, request) => policy.inject(effect, request))
)

/** @internal */
export const middleware = <E2, R2>(
  policy: Chaos.Policy<HttpServerRequest.HttpServerRequest, HttpServerResponse.HttpServerResponse, E2, R2>
) =>
<E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E | E2, R | R2> =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => policy.inject(app, request))
