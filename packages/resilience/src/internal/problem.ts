import * as HttpServerResponse from "@effect/platform/HttpServerResponse"

/**
 * An RFC 9457 problem details body: `type`, `title`, `status` and `detail`,
 * then the type's extension members, served as `application/problem+json`.
 * Shared by the HTTP middlewares (rate limiter, idempotency) so their
 * refusals look alike.
 *
 * @internal
 */
export const problem = (
  status: number,
  title: string,
  detail: string,
  type: string,
  headers: Readonly<Record<string, string>>,
  extensions?: Readonly<Record<string, unknown>>
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson({ type, title, status, detail, ...extensions }, {
    status,
    contentType: "application/problem+json",
    headers
  })
