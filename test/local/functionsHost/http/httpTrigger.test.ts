/** The local host's HTTP listener in-process, with the app's body limit, driven by a raw node:http client. */
import http from 'node:http';
import { MAX_BODY_BYTES } from '../../../../functions/lib/httpAdapter';
import type { RegisteredFunction } from '../../../../local/functionsHost/functionsCoreModule';
import type { FunctionInvoker, InvocationInput } from '../../../../local/functionsHost/functionInvoker';
import type { HostLogger } from '../../../../local/functionsHost/hostLogger';
import { HttpTrigger } from '../../../../local/functionsHost/http/httpTrigger';

const MB = 1024 * 1024;

function httpFunction(): RegisteredFunction {
  const binding = { type: 'httpTrigger', direction: 'in' as const, route: 'size', methods: ['POST'] };
  return {
    name: 'size',
    functionId: 'size',
    metadata: { name: 'size', bindings: { httpTrigger1: binding } },
    callback: () => undefined,
    triggerBindingName: 'httpTrigger1',
    trigger: binding,
    triggerType: 'httpTrigger',
  };
}

interface Answer {
  status: number;
  contentType: string | undefined;
  body: Record<string, unknown>;
  /** Body bytes the client had written when the answer came. */
  sent: number;
}

/**
 * POSTs `total` bytes in 64 KB chunks (chunked encoding unless `contentLength` is given), waiting for the socket to
 * drain between chunks; stops writing as soon as the answer arrives or the host closes the connection.
 */
function post(port: number, total: number, options: { contentLength?: number } = {}): Promise<Answer> {
  const chunk = Buffer.alloc(64 * 1024, 'a');
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answered = false;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (options.contentLength !== undefined) headers['content-length'] = String(options.contentLength);
    const request = http.request({ port, method: 'POST', path: '/api/size', headers }, (response) => {
      answered = true;
      const parts: Buffer[] = [];
      response.on('data', (part: Buffer) => parts.push(part));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          contentType: response.headers['content-type'],
          body: JSON.parse(Buffer.concat(parts).toString('utf8') || '{}') as Record<string, unknown>,
          sent,
        }),
      );
    });
    request.on('error', (error) => {
      if (!answered) reject(error);
    });
    const writeMore = (): void => {
      while (!answered && !request.destroyed && sent < total) {
        const piece = total - sent >= chunk.length ? chunk : chunk.subarray(0, total - sent);
        sent += piece.length;
        if (!request.write(piece)) {
          request.once('drain', writeMore);
          return;
        }
      }
      if (sent >= total && !request.writableEnded) request.end();
    };
    if (options.contentLength !== undefined && total === 0) {
      request.flushHeaders();
    } else {
      writeMore();
    }
  });
}

describe('local host HTTP listener with the app body limit', () => {
  let trigger: HttpTrigger;
  const invoked: number[] = [];

  beforeEach(async () => {
    invoked.length = 0;
    const invoker = {
      async invoke(_fn: RegisteredFunction, input: InvocationInput) {
        const data = input.inputData[0].data as { http: { body?: { bytes?: Uint8Array } } };
        invoked.push(data.http.body?.bytes?.byteLength ?? 0);
        return { returnValue: { http: { statusCode: 200, body: { string: '{}' } } } };
      },
    } as unknown as FunctionInvoker;
    const logger: HostLogger = {
      write: () => undefined,
      info: () => undefined,
      warn: () => undefined,
      error: () => undefined,
    };
    trigger = new HttpTrigger(
      [httpFunction()],
      invoker,
      { hostname: '127.0.0.1', port: 0, routePrefix: 'api', maxRequestBodyBytes: MAX_BODY_BYTES, hostId: 'test' },
      logger,
    );
    await trigger.start();
  });

  afterEach(async () => {
    await trigger.close();
  });

  it('refuses a 32 MB chunked body with 413 PayloadTooLarge while reading it, without buffering it', async () => {
    global.gc?.();
    const before = process.memoryUsage();
    const answer = await post(trigger.port, 32 * MB);
    const after = process.memoryUsage();
    expect(answer).toMatchObject({
      status: 413,
      contentType: 'application/problem+json',
      body: { status: 413, code: 'PayloadTooLarge' },
    });
    expect(answer.body.detail).toContain(`at most ${MAX_BODY_BYTES}`);
    // The host stopped reading just past the limit: the client could write only what the kernel's socket buffers hold
    // (a few MB on loopback), not the whole body ...
    expect(answer.sent).toBeLessThan(16 * MB);
    // ... and neither the host's buffers nor the process grew by the body's size.
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(2 * MB);
    expect(after.rss - before.rss).toBeLessThan(5 * MB);
    expect(invoked).toEqual([]);
  });

  it('refuses a declared Content-Length over the limit before reading any of the body', async () => {
    const answer = await post(trigger.port, 0, { contentLength: 10 * MB });
    expect(answer).toMatchObject({ status: 413, body: { code: 'PayloadTooLarge' }, sent: 0 });
    expect(answer.body.detail).toContain(`has ${10 * MB} bytes`);
    expect(invoked).toEqual([]);
  });

  it('passes a body of exactly the limit to the function', async () => {
    const answer = await post(trigger.port, MAX_BODY_BYTES);
    expect(answer.status).toBe(200);
    expect(invoked).toEqual([MAX_BODY_BYTES]);
  });
});
