import path from 'node:path';
import { startFunctionsHostProcess, type HostProcess } from './support/functionsHostProcess';

/** An app without hooks: the invoker runs the library's invocation steps without building hook contexts. */
const NO_HOOKS_APP = path.join(__dirname, 'fixtures', 'noHooksApp');

describe('function invocation in an app without hooks (real @azure/functions, child process)', () => {
  let host: HostProcess;
  let baseUrl: string;

  beforeAll(async () => {
    ({ host, baseUrl } = await startFunctionsHostProcess({ appRoot: NO_HOOKS_APP }));
  }, 90_000);

  afterAll(async () => {
    await host?.stop();
  });

  it('returns the handler status, body, headers and cookies, and routes context.log', async () => {
    const response = await fetch(`${baseUrl}/api/greet/ada`);
    expect(response.status).toBe(201);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.get('x-greeted')).toBe('ada');
    expect(response.headers.getSetCookie()).toEqual(['seen=1; Path=/']);
    const text = await response.text();
    // A whole body is sent with its length, not chunked.
    expect(response.headers.get('content-length')).toBe(String(Buffer.byteLength(text)));
    expect(response.headers.get('transfer-encoding')).toBeNull();
    const body = JSON.parse(text) as { greeting: string; invocationId: string };
    expect(body.greeting).toBe('hello ada');
    await host.waitForOutput(new RegExp(`greet \\(${body.invocationId}\\) greeting ada`));
  });

  it('maps an exception thrown after an await to 500 with the invocation id, details only in the log', async () => {
    const response = await fetch(`${baseUrl}/api/fail-later`);
    expect(response.status).toBe(500);
    const problem = (await response.json()) as { invocationId: string };
    expect(JSON.stringify(problem)).not.toContain('secret internal detail');
    await host.waitForOutput(
      new RegExp(`Executed 'failLater' \\(Failed, Id=${problem.invocationId}.*secret internal detail`),
    );

    // The host keeps serving after a failure.
    expect((await fetch(`${baseUrl}/api/greet/again`)).status).toBe(201);
  });
});
