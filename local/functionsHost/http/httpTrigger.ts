import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PROBLEM_CONTENT_TYPE, toProblem, TwinError } from '../../../shared/errors';
import type { RegisteredFunction } from '../functionsCoreModule';
import type { RpcHttpCookie, RpcHttpData, RpcInvocationResponse, RpcTypedData } from '../functionsCoreTypes';
import { FunctionInvocationError, type FunctionInvoker } from '../functionInvoker';
import { describeError, type HostLogger } from '../hostLogger';
import type { TriggerListener } from '../triggerListener';
import { compareRoutePrecedence, HttpRouteTemplate } from './httpRouteTemplate';

/**
 * Azure Functions' request body limit (100 MB), the default here. The local stack sets the app's own limit instead
 * (app setting FUNCTIONS_REQUEST_BODY_SIZE_LIMIT), so that a larger body is refused while it arrives, not buffered.
 */
export const DEFAULT_MAX_REQUEST_BODY_BYTES = 100 * 1024 * 1024;

const PROBLEM_JSON = 'application/problem+json';
/** While closing, idle keep-alive connections are closed this often (ms) ... */
const CLOSE_SWEEP_INTERVAL_MS = 20;
/** ... until all are gone or this much time (ms) has passed; then the rest are cut. */
const CLOSE_GRACE_MS = 2_000;

export interface HttpTriggerOptions {
  /** Listen address; the default keeps the host on loopback. */
  hostname: string;
  /** 0 picks a free port. */
  port: number;
  /** host.json `extensions.http.routePrefix`, without slashes (`api`, or `` for none). */
  routePrefix: string;
  maxRequestBodyBytes: number;
  /** Reported by `GET /admin/host/status`. */
  hostId: string;
}

interface HttpRoute {
  fn: RegisteredFunction;
  template: HttpRouteTemplate;
  /** Upper-case methods, or undefined for any. */
  methods: ReadonlySet<string> | undefined;
}

/** A body over the limit: its declared length, or undefined when it was refused while arriving. */
class RequestBodyTooLargeError extends Error {
  constructor(readonly declaredBytes?: number) {
    super('request body too large');
  }
}

/**
 * Serves HTTP-triggered functions like the Functions host: `<routePrefix>/<route>` with ASP.NET route templates, route
 * parameters in the request's `params`, auth levels not enforced (as with `func start`). Unknown route: 404; known
 * route, other method: 405 with `Allow`; handler failure: 500 problem+json naming the invocation id (details in the
 * log only); body over the limit: 413 problem+json `PayloadTooLarge`, as the app answers, refused on its Content-Length
 * before any of it is read, or as soon as the bytes read pass the limit (the rest is never read; the connection closes).
 */
export class HttpTrigger implements TriggerListener {
  readonly #routes: HttpRoute[];
  readonly #server: http.Server;
  readonly #prefix: string;
  #port = 0;
  #startedAt = Date.now();
  #closed: Promise<void> = Promise.resolve();

  constructor(
    functions: RegisteredFunction[],
    private readonly invoker: FunctionInvoker,
    private readonly options: HttpTriggerOptions,
    private readonly logger: HostLogger,
  ) {
    this.#routes = functions.map((fn) => toRoute(fn)).sort((a, b) => compareRoutePrecedence(a.template, b.template));
    warnAboutConflictingRoutes(this.#routes, logger);
    this.#prefix = options.routePrefix === '' ? '' : `/${options.routePrefix.toLowerCase()}`;
    this.#server = http.createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        this.logger.error(`HTTP ${req.method} ${req.url} failed in the host: ${describeError(error)}`);
        if (!res.headersSent) {
          sendProblem(res, 500, 'Internal Server Error', 'The local Functions host failed to handle the request.');
        } else {
          res.destroy();
        }
      });
    });
  }

  get port(): number {
    return this.#port;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => {
        reject(
          new Error(
            error.code === 'EADDRINUSE'
              ? `Port ${this.options.port} on ${this.options.hostname} is in use; stop the other process or pass another --port.`
              : `The HTTP listener could not start: ${error.message}`,
          ),
        );
      };
      this.#server.once('error', onError);
      this.#server.listen(this.options.port, this.options.hostname, () => {
        this.#server.off('error', onError);
        resolve();
      });
    });
    this.#port = (this.#server.address() as AddressInfo).port;
    this.#startedAt = Date.now();
  }

  async stop(): Promise<void> {
    if (this.#server.listening) {
      this.#closed = new Promise((resolve) => this.#server.close(() => resolve()));
    }
    this.#server.closeIdleConnections();
  }

  /** After the drain: lets finished responses flush, closing connections as they go idle, then cuts the rest. */
  async close(): Promise<void> {
    await this.stop();
    const sweep = setInterval(() => this.#server.closeIdleConnections(), CLOSE_SWEEP_INTERVAL_MS);
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, CLOSE_GRACE_MS).unref());
    await Promise.race([this.#closed, deadline]);
    clearInterval(sweep);
    this.#server.closeAllConnections();
    await this.#closed;
  }

  /** `host:port` as bound. */
  describeAddress(): string {
    return `${this.options.hostname.includes(':') ? `[${this.options.hostname}]` : this.options.hostname}:${this.#port}`;
  }

  describe(): string[] {
    const base = `http://${this.describeAddress()}`;
    return this.#routes.map((route) => {
      const methods = route.methods ? [...route.methods].join(',') : 'ANY';
      const path = [this.#prefix, route.template.template.replace(/^\/+/, '')].filter((p) => p !== '').join('/');
      return `${route.fn.name}: [${methods}] ${base}${path.startsWith('/') ? '' : '/'}${path}`;
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = req.url ?? '/';
    const pathAndQuery = target.startsWith('/') ? target : toOriginForm(target);
    const queryStart = pathAndQuery.indexOf('?');
    const rawPath = queryStart < 0 ? pathAndQuery : pathAndQuery.slice(0, queryStart);
    const method = (req.method ?? 'GET').toUpperCase();

    const relativePath = this.relativeToPrefix(rawPath);
    let allowed: Set<string> | undefined;
    if (relativePath !== undefined) {
      for (const route of this.#routes) {
        const params = route.template.match(relativePath);
        if (!params) {
          continue;
        }
        if (!route.methods || route.methods.has(method)) {
          await this.invoke(route.fn, req, res, method, pathAndQuery, params);
          return;
        }
        allowed ??= new Set();
        route.methods.forEach((m) => allowed?.add(m));
      }
    }
    if (allowed) {
      res.setHeader('allow', [...allowed].join(', '));
      sendProblem(
        res,
        405,
        'Method Not Allowed',
        `${method} is not allowed here; allowed: ${[...allowed].join(', ')}.`,
      );
      return;
    }
    if (rawPath === '/admin/host/status' && (method === 'GET' || method === 'HEAD')) {
      this.sendHostStatus(res);
      return;
    }
    if (rawPath === '/' && (method === 'GET' || method === 'HEAD')) {
      res.setHeader('content-type', 'text/plain; charset=utf-8');
      res.end('The local Azure Functions host is running.\n');
      return;
    }
    sendProblem(res, 404, 'Not Found', `No function serves ${method} ${rawPath}.`);
  }

  /** `/api/twins/x` -> `/twins/x`; `/api` -> ``; undefined when the path is outside the prefix. */
  private relativeToPrefix(rawPath: string): string | undefined {
    const prefix = this.#prefix;
    if (prefix === '') {
      return rawPath === '/' ? '' : rawPath;
    }
    if (rawPath.length < prefix.length || rawPath.slice(0, prefix.length).toLowerCase() !== prefix) {
      return undefined;
    }
    const rest = rawPath.slice(prefix.length);
    if (rest === '' || rest === '/') {
      return '';
    }
    return rest.startsWith('/') ? rest : undefined;
  }

  private async invoke(
    fn: RegisteredFunction,
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    pathAndQuery: string,
    params: Record<string, string>,
  ): Promise<void> {
    let body: Buffer | undefined;
    try {
      // Most requests (GETs) declare no body: no read, no promise to wait for.
      body = declaresBody(req) ? await readRequestBody(req, this.options.maxRequestBodyBytes) : undefined;
    } catch (error) {
      if (error instanceof RequestBodyTooLargeError) {
        const limit = this.options.maxRequestBodyBytes;
        const size = error.declaredBytes === undefined ? `more than ${limit}` : String(error.declaredBytes);
        const problem = toProblem(
          new TwinError('PayloadTooLarge', `The body has ${size} bytes; at most ${limit} are accepted`),
        );
        res.statusCode = problem.status;
        res.setHeader('content-type', PROBLEM_CONTENT_TYPE);
        res.setHeader('connection', 'close');
        res.end(JSON.stringify(problem));
        res.once('finish', () => req.destroy());
        return;
      }
      throw error;
    }
    const httpInput: RpcHttpData = {
      method,
      url: `http://${hostHeader(req, this.options.hostname, this.#port)}${pathAndQuery}`,
      headers: toHeaderRecord(req),
      params,
      body: body ? { bytes: body } : undefined,
    };
    let response: RpcInvocationResponse;
    try {
      response = await this.invoker.invoke(fn, {
        inputData: [{ name: fn.triggerBindingName, data: { http: httpInput } }],
      });
    } catch (error) {
      if (error instanceof FunctionInvocationError) {
        sendProblem(
          res,
          500,
          'Internal Server Error',
          `Function '${fn.name}' failed; see the host log for invocation ${error.invocationId}.`,
          { invocationId: error.invocationId },
        );
        return;
      }
      throw error;
    }
    writeHttpResponse(res, findHttpOutput(response));
  }

  private sendHostStatus(res: ServerResponse): void {
    res.setHeader('content-type', 'application/json; charset=utf-8');
    res.end(
      JSON.stringify({
        id: this.options.hostId,
        state: 'Running',
        processUptime: Date.now() - this.#startedAt,
        functions: this.#routes.map((route) => route.fn.name),
      }),
    );
  }
}

function toRoute(fn: RegisteredFunction): HttpRoute {
  const route = typeof fn.trigger.route === 'string' ? fn.trigger.route : fn.name;
  const methods = Array.isArray(fn.trigger.methods)
    ? new Set(fn.trigger.methods.map((m) => String(m).toUpperCase()))
    : undefined;
  try {
    return { fn, template: HttpRouteTemplate.parse(route), methods };
  } catch (error) {
    throw new Error(`Function '${fn.name}': ${(error as Error).message}`);
  }
}

/** Two functions with the same template and a common method: only the first (in registration order) is reachable. */
function warnAboutConflictingRoutes(routes: HttpRoute[], logger: HostLogger): void {
  routes.forEach((route, index) => {
    for (const other of routes.slice(index + 1)) {
      const sameTemplate =
        route.template.template.replace(/^\/+|\/+$/g, '').toLowerCase() ===
        other.template.template.replace(/^\/+|\/+$/g, '').toLowerCase();
      const sharedMethod = !route.methods || !other.methods || [...route.methods].some((m) => other.methods?.has(m));
      if (sameTemplate && sharedMethod) {
        logger.warn(
          `Functions '${route.fn.name}' and '${other.fn.name}' both serve route "${route.template.template}" ` +
            `with a common method; requests go to '${route.fn.name}'.`,
        );
      }
    }
  });
}

/** Whether the request has a body to read: a non-zero Content-Length, or Transfer-Encoding without a length. */
function declaresBody(req: IncomingMessage): boolean {
  const declaredLength = req.headers['content-length'];
  return declaredLength === undefined ? req.headers['transfer-encoding'] !== undefined : declaredLength !== '0';
}

/** Reads the whole body of a request that `declaresBody`. Rejects with RequestBodyTooLargeError past `limit`. */
function readRequestBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declaredLength = req.headers['content-length'];
  if (declaredLength !== undefined && Number(declaredLength) > limit) {
    return Promise.reject(new RequestBodyTooLargeError(Number(declaredLength)));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.pause();
        reject(new RequestBodyTooLargeError());
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size)));
    req.once('error', reject);
  });
}

/** Node joins repeated request headers with ", " (cookies with "; "); the library takes one string per name. */
function toHeaderRecord(req: IncomingMessage): Record<string, string> {
  const source = req.headers;
  const headers: Record<string, string> = {};
  for (const name in source) {
    const value = source[name];
    if (value !== undefined) {
      headers[name] = typeof value === 'string' ? value : value.join(', ');
    }
  }
  return headers;
}

const HOST_HEADER_PATTERN = /^[A-Za-z0-9.\-_~]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;

/** The Host header when it is a plain host[:port] (the request URL is built from it), else the listen address. */
function hostHeader(req: IncomingMessage, hostname: string, port: number): string {
  const host = req.headers.host;
  if (host && HOST_HEADER_PATTERN.test(host)) {
    return host;
  }
  return `${hostname.includes(':') ? `[${hostname}]` : hostname}:${port}`;
}

/** An absolute-form request target (`GET http://host/path`) as origin-form (`/path?query`). */
function toOriginForm(target: string): string {
  try {
    const url = new URL(target);
    return `${url.pathname}${url.search}`;
  } catch {
    return '/';
  }
}

/** The HTTP output: the `$return` binding or, failing that, a named http output binding. */
function findHttpOutput(response: RpcInvocationResponse): RpcHttpData | undefined {
  if (response.returnValue?.http) {
    return response.returnValue.http;
  }
  return response.outputData?.find((binding) => binding.data?.http)?.data?.http ?? undefined;
}

function writeHttpResponse(res: ServerResponse, output: RpcHttpData | undefined): void {
  if (!output) {
    res.statusCode = 204;
    res.end();
    return;
  }
  const status = Number(output.statusCode ?? 200);
  res.statusCode = Number.isInteger(status) && status >= 100 && status <= 999 ? status : 500;
  for (const [name, value] of Object.entries(output.headers ?? {})) {
    res.setHeader(name, value);
  }
  if (output.cookies && output.cookies.length > 0) {
    const existing = res.getHeader('set-cookie');
    const fromHeaders = existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)];
    res.setHeader('set-cookie', [...fromHeaders, ...output.cookies.map(serializeCookie)]);
  }
  res.end(bodyBytes(output.body));
}

function bodyBytes(body: RpcTypedData | null | undefined): Buffer | string | undefined {
  if (!body) {
    return undefined;
  }
  if (body.bytes) {
    return Buffer.from(body.bytes.buffer, body.bytes.byteOffset, body.bytes.byteLength);
  }
  return body.string ?? body.json ?? undefined;
}

/** RFC 6265 Set-Cookie from the worker's cookie shape (`sameSite: 'none'` means unset, `explicitNone` means None). */
function serializeCookie(cookie: RpcHttpCookie): string {
  let text = `${cookie.name ?? ''}=${cookie.value ?? ''}`;
  if (cookie.domain?.value) {
    text += `; Domain=${cookie.domain.value}`;
  }
  if (cookie.path?.value) {
    text += `; Path=${cookie.path.value}`;
  }
  const expiresSeconds = cookie.expires?.value?.seconds;
  if (typeof expiresSeconds === 'number') {
    text += `; Expires=${new Date(expiresSeconds * 1000).toUTCString()}`;
  }
  if (typeof cookie.maxAge?.value === 'number') {
    text += `; Max-Age=${cookie.maxAge.value}`;
  }
  if (cookie.secure?.value) {
    text += '; Secure';
  }
  if (cookie.httpOnly?.value) {
    text += '; HttpOnly';
  }
  const sameSite = { lax: 'Lax', strict: 'Strict', explicitNone: 'None', none: undefined }[cookie.sameSite ?? 'none'];
  if (sameSite) {
    text += `; SameSite=${sameSite}`;
  }
  return text;
}

function sendProblem(
  res: ServerResponse,
  status: number,
  title: string,
  detail: string,
  extra: Record<string, string> = {},
): void {
  res.statusCode = status;
  res.setHeader('content-type', PROBLEM_JSON);
  res.end(JSON.stringify({ type: 'about:blank', title, status, detail, ...extra }));
}
