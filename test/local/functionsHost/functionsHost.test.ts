import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawnFunctionsHost, startFunctionsHostProcess, type HostProcess } from './support/functionsHostProcess';

const FIXTURES = path.join(__dirname, 'fixtures');
const HTTP_APP = path.join(FIXTURES, 'httpApp');
/** The fixture's body limit, below Azure's 100 MB default so the test stays small. */
const BODY_LIMIT = 1024 * 1024;

interface EchoBody {
  method: string;
  url: string;
  params: Record<string, string>;
  query: Record<string, string[]>;
  headers: Record<string, string>;
  body: string | null;
  invocationId: string;
  functionName: string;
  settings: { fromLocalSettings: string | null; overridden: string | null };
}

describe('local Functions host over HTTP (real @azure/functions, child process)', () => {
  let host: HostProcess;
  let baseUrl: string;

  beforeAll(async () => {
    // local.settings.json is git-ignored, so the test writes the fixture's copy.
    await writeFile(
      path.join(HTTP_APP, 'local.settings.json'),
      JSON.stringify({
        IsEncrypted: false,
        Values: { FIXTURE_FROM_LOCAL_SETTINGS: 'from-local-settings', FIXTURE_OVERRIDDEN: 'from-local-settings' },
      }),
    );
    ({ host, baseUrl } = await startFunctionsHostProcess({
      appRoot: HTTP_APP,
      env: { FIXTURE_OVERRIDDEN: 'from-environment' },
      args: ['--max-request-body-bytes', String(BODY_LIMIT)],
    }));
  }, 90_000);

  afterAll(async () => {
    await host?.stop();
    await rm(path.join(HTTP_APP, 'local.settings.json'), { force: true });
  });

  it('routes templates with route params, repeated query keys, headers and the request URL', async () => {
    const response = await fetch(`${baseUrl}/api/echo/a%20b/extra?k=1&k=2&z=3`, { headers: { 'x-custom': 'v1' } });
    expect(response.status).toBe(200);
    const echo = (await response.json()) as EchoBody;
    expect(echo.functionName).toBe('echo');
    expect(echo.params).toEqual({ id: 'a b', rest: 'extra' });
    expect(echo.query).toEqual({ k: ['1', '2'], z: ['3'] });
    expect(echo.headers['x-custom']).toBe('v1');
    expect(echo.url).toBe(`${baseUrl}/api/echo/a%20b/extra?k=1&k=2&z=3`);

    const withoutOptional = (await (await fetch(`${baseUrl}/api/echo/only`)).json()) as EchoBody;
    expect(withoutOptional.params).toEqual({ id: 'only' });
  });

  it('forwards the request body as bytes', async () => {
    const response = await fetch(`${baseUrl}/api/echo/1`, { method: 'POST', body: 'héllo body' });
    expect(((await response.json()) as EchoBody).body).toBe('héllo body');

    const bytes = new Uint8Array(300_000).map((_, index) => index % 256);
    const sized = await fetch(`${baseUrl}/api/size`, { method: 'POST', body: bytes });
    expect(await sized.json()).toEqual({ bytes: 300_000 });
  });

  it('serves catch-all routes, constraints before plain parameters, literals first, and the function name as default route', async () => {
    const json = async (pathAndQuery: string): Promise<unknown> => (await fetch(`${baseUrl}${pathAndQuery}`)).json();
    expect(await json('/api/files/a/b/c.txt')).toEqual({ path: 'a/b/c.txt' });
    expect(await json('/api/files')).toEqual({ path: null });
    expect(await json('/api/items/special')).toEqual({ matched: 'literal' });
    expect(await json('/api/items/12')).toEqual({ matched: 'int', id: '12' });
    expect(await json('/api/items/abc')).toEqual({ matched: 'name', name: 'abc' });
    expect(await json('/API/Items/Special')).toEqual({ matched: 'literal' });
    expect(await (await fetch(`${baseUrl}/api/defaultRoute`)).text()).toBe('served at the function name');
  });

  it('returns the handler status, headers (repeated values) and cookies', async () => {
    const response = await fetch(`${baseUrl}/api/status/418`);
    expect(response.status).toBe(418);
    expect(response.headers.get('x-multi')).toBe('a, b');
    expect(response.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(response.headers.getSetCookie()).toEqual(['session=abc; Path=/; HttpOnly; SameSite=Strict']);
    expect(await response.text()).toBe('status 418');

    const empty = await fetch(`${baseUrl}/api/nothing`);
    expect(empty.status).toBe(204);
    const deleted = await fetch(`${baseUrl}/api/things/7`, { method: 'DELETE' });
    expect(deleted.status).toBe(204);
  });

  it('answers 404 for unknown routes and 405 with Allow for other methods', async () => {
    const unknown = await fetch(`${baseUrl}/api/nope`);
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toBe('application/problem+json');
    expect((await fetch(`${baseUrl}/echo/1`)).status).toBe(404);
    expect((await fetch(`${baseUrl}/api/items/1/2`)).status).toBe(404);

    const wrongMethod = await fetch(`${baseUrl}/api/echo/1`, { method: 'DELETE' });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('GET, POST, PUT');
  });

  it('maps a handler exception to 500 problem+json with the invocation id, details only in the log', async () => {
    const response = await fetch(`${baseUrl}/api/fail`, { method: 'POST' });
    expect(response.status).toBe(500);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    const problem = (await response.json()) as { status: number; invocationId: string; detail: string };
    expect(problem.status).toBe(500);
    expect(problem.invocationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.stringify(problem)).not.toContain('secret internal detail');
    await host.waitForOutput(new RegExp(`fail \\(${problem.invocationId}\\) error: about to fail`));
    await host.waitForOutput(
      new RegExp(`Executed 'fail' \\(Failed, Id=${problem.invocationId}.*secret internal detail`),
    );
  });

  it('prefixes context.log lines with the function name and invocation id', async () => {
    const echo = (await (await fetch(`${baseUrl}/api/echo/logged`)).json()) as EchoBody;
    await host.waitForOutput(new RegExp(`echo \\(${echo.invocationId}\\) echo called for logged`));
  });

  it('runs appStart, preInvocation and postInvocation hooks around the handler', async () => {
    const response = await fetch(`${baseUrl}/api/echo/hooks`);
    expect(response.headers.get('x-hook-data')).toBe('pre:echo');
    expect(response.headers.get('x-app-started')).toBe('yes');
  });

  it('takes app settings from the environment first, then local.settings.json', async () => {
    const echo = (await (await fetch(`${baseUrl}/api/echo/settings`)).json()) as EchoBody;
    expect(echo.settings).toEqual({ fromLocalSettings: 'from-local-settings', overridden: 'from-environment' });
  });

  it('rejects a body over the configured limit with 413', async () => {
    const tooLarge = await fetch(`${baseUrl}/api/size`, { method: 'POST', body: new Uint8Array(BODY_LIMIT + 1) });
    expect(tooLarge.status).toBe(413);
    const atLimit = await fetch(`${baseUrl}/api/size`, { method: 'POST', body: new Uint8Array(BODY_LIMIT) });
    expect(await atLimit.json()).toEqual({ bytes: BODY_LIMIT });
  });

  it('reports its status on /admin/host/status', async () => {
    const status = (await (await fetch(`${baseUrl}/admin/host/status`)).json()) as { state: string; id: string };
    expect(status).toMatchObject({ state: 'Running', id: 'http-fixture-app' });
  });

  it('finishes requests in flight on SIGTERM, then exits 0', async () => {
    const { host: stopping, baseUrl: stoppingUrl } = await startFunctionsHostProcess({ appRoot: HTTP_APP });
    try {
      const inFlight = fetch(`${stoppingUrl}/api/slow?ms=700`);
      await stopping.waitForOutput(/slow \([0-9a-f-]+\) slow started/);
      stopping.child.kill('SIGTERM');
      const response = await inFlight;
      expect(response.status).toBe(200);
      expect(await response.text()).toBe('slow done');
      expect(await stopping.exited).toBe(0);
      expect(stopping.output()).toContain('Functions host stopped.');
    } finally {
      await stopping.stop();
    }
  }, 60_000);
});

describe('local Functions host start-up failures', () => {
  it('fails loudly when @azure/functions was used before the host installed its core module (test mode)', async () => {
    const host = spawnFunctionsHost({
      appRoot: HTTP_APP,
      nodeArgs: ['--require', path.join(FIXTURES, 'preloadTestMode.js')],
    });
    expect(await host.exited).toBe(1);
    expect(host.output()).toMatch(/@azure\/functions is in "test mode"/);
  }, 60_000);

  it('fails with a clear message when package.json main matches no file', async () => {
    const appRoot = await mkdtemp(path.join(os.tmpdir(), 'functions-host-empty-'));
    try {
      await writeFile(
        path.join(appRoot, 'package.json'),
        JSON.stringify({ name: 'empty', main: 'dist/functions/*.js' }),
      );
      const host = spawnFunctionsHost({ appRoot });
      expect(await host.exited).toBe(1);
      expect(host.output()).toMatch(/No file matches package.json "main" \("dist\/functions\/\*\.js"\)/);
    } finally {
      await rm(appRoot, { recursive: true, force: true });
    }
  }, 60_000);
});
