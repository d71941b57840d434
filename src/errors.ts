/** Named errors; the HTTP layer maps them to status codes in one place (src/api/server.ts). */
export class RumError extends Error {
  override name = 'RumError';
  readonly status: number = 500;
}
export class BadRequestError extends RumError {
  override name = 'BadRequestError';
  override readonly status: number = 400;
}
export class NotFoundError extends RumError {
  override name = 'NotFoundError';
  override readonly status: number = 404;
}
export class UnauthorizedError extends RumError {
  override name = 'UnauthorizedError';
  override readonly status: number = 401;
}
export class ConflictError extends RumError {
  override name = 'ConflictError';
  override readonly status: number = 409;
}
