import * as HttpServerResponse from "@effect/platform/HttpServerResponse"

/**
 * An RFC 9457 problem details body: `type`, `title`, `status` and `detail`,
 * served as `application/problem+json`. Shared by the HTTP middlewares
 * (rate limiter, idempotency) so their refusals look alike.
 *
 * @internal
 */
export const problem = (
  status: number,
  title: string,
  detail: string,
  type: string,
  headers: Readonly<Record<string, string>>
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson({ type, title, status, detail }, {
    status,
    contentType: "application/problem+json",
    headers
  })
