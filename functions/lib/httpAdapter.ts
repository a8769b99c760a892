/**
 * What every HTTP handler shares: reading a bounded JSON body, and mapping TwinErrors to
 * `application/problem+json`. Unexpected errors are rethrown: the host answers 500 and logs them.
 */
import { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { PROBLEM_CONTENT_TYPE, TwinError, isTwinError, toProblem } from '../../shared/errors';

/** Largest request body accepted, bytes (413 beyond). */
export const MAX_BODY_BYTES = 64 * 1024;

export type HttpHandler = (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;

export function problemResponse(error: TwinError): HttpResponseInit {
  return { status: error.status, jsonBody: toProblem(error), headers: { 'Content-Type': PROBLEM_CONTENT_TYPE } };
}

/** Wraps a handler so that a TwinError becomes its problem response. */
export function withProblems(handler: HttpHandler): HttpHandler {
  return async (request, context) => {
    try {
      return await handler(request, context);
    } catch (error) {
      if (isTwinError(error)) {
        if (error.status >= 500) context.warn(`${error.code}: ${error.message}`);
        return problemResponse(error);
      }
      throw error;
    }
  };
}

export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): HttpResponseInit {
  return { status, jsonBody: body, headers: { 'Content-Type': 'application/json', ...headers } };
}

/**
 * The request's JSON body, or undefined when there is none. 413 past MAX_BODY_BYTES (checked on the
 * declared length first, so a huge body is refused before it is read), 415 for a non-JSON content type,
 * 400 naming the position of a syntax error.
 */
export async function readJsonBody(request: HttpRequest): Promise<unknown> {
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > MAX_BODY_BYTES) throw tooLarge(declared);
  const contentType = request.headers.get('content-type');
  const bytes = Buffer.from(await request.arrayBuffer());
  if (bytes.length > MAX_BODY_BYTES) throw tooLarge(bytes.length);
  if (bytes.length === 0) return undefined;
  if (contentType && !/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(contentType)) {
    throw new TwinError('UnsupportedMediaType', `Content-Type must be application/json; got ${contentType}`, {
      field: 'Content-Type',
    });
  }
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new TwinError('InvalidJson', `The body is not valid JSON: ${(error as Error).message}`, { field: '' });
  }
}

function tooLarge(bytes: number): TwinError {
  return new TwinError('PayloadTooLarge', `The body has ${bytes} bytes; at most ${MAX_BODY_BYTES} are accepted`);
}
