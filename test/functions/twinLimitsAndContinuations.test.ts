/**
 * The HTTP handlers' answers to oversized twin contents and to continuation tokens that continue nothing:
 * handlers wrapped as the app wraps them, the Functions library's own HttpRequest, the local Cosmos server.
 */
import { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { listDeviceJobsHandler } from '../../functions/listDeviceJobs';
import { withProblems } from '../../functions/lib/httpAdapter';
import { patchTwinHandler } from '../../functions/patchTwin';
import { provisionDeviceHandler } from '../../functions/provisionDevice';
import { queryTwinsHandler } from '../../functions/queryTwins';
import { EMULATOR_KEY } from '../../local/cosmosServer';
import { CosmosJobStore, openJobsContainer } from '../../shared/cosmosJobStore';
import { newJob } from '../../shared/job';
import { TestCosmos, startTestCosmos } from '../support/localCosmos';

type Handler = (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;

async function call(
  handler: Handler,
  init: { method: string; path: string; body?: unknown; headers?: Record<string, string> },
  params: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Record<string, string> }> {
  const request = new HttpRequest({
    method: init.method,
    url: `http://localhost/api${init.path}`,
    headers: { ...(init.body !== undefined && { 'content-type': 'application/json' }), ...init.headers },
    ...(init.body !== undefined && { body: { string: JSON.stringify(init.body) } }),
    params,
  });
  const response = await withProblems(handler)(request, new InvocationContext({ functionName: 'test' }));
  return {
    status: response.status ?? 200,
    body: response.jsonBody as Record<string, unknown>,
    headers: (response.headers ?? {}) as Record<string, string>,
  };
}

const patch = (deviceId: string, body: unknown) =>
  call(patchTwinHandler, { method: 'PATCH', path: `/twins/${deviceId}`, body }, { deviceId });
/** Provisions without device security (`security` is mandatory; these tests are about twin contents). */
const provision = (deviceId: string, body: Record<string, unknown> = {}) =>
  call(
    provisionDeviceHandler,
    { method: 'PUT', path: `/devices/${deviceId}`, body: { security: { mode: 'none' }, ...body } },
    { deviceId },
  );
const queryTwins = (query: string, headers?: Record<string, string>) =>
  call(queryTwinsHandler, { method: 'GET', path: `/twins?${query}`, headers });
const listJobs = (deviceId: string, query: string, headers?: Record<string, string>) =>
  call(listDeviceJobsHandler, { method: 'GET', path: `/devices/${deviceId}/jobs?${query}`, headers }, { deviceId });

const KB = 1024;

describe('twin content limits and continuation tokens over HTTP', () => {
  let cosmos: TestCosmos;
  let jobs: CosmosJobStore;

  beforeAll(async () => {
    cosmos = await startTestCosmos();
    // The app's own configuration, pointed at this file's local Cosmos (its clients are created on first use).
    process.env.CosmosDb__accountEndpoint = cosmos.server.endpoint;
    process.env.CosmosDb__accountKey = EMULATOR_KEY;
    process.env.CosmosDb__trustedCertificatePath = cosmos.server.certPath;
    process.env.CosmosDb__databaseName = 'limits-http';
    jobs = new CosmosJobStore(await openJobsContainer(cosmos.client, 'limits-http'));
  });
  afterAll(() => cosmos.close());

  it('refuses an over-8 KB tag or service property with 400 naming it, and stores nothing', async () => {
    expect((await provision('lim-1')).status).toBe(201);
    const cases: [unknown, string][] = [
      [{ tags: { blob: 'x'.repeat(8 * KB + 1) } }, 'tags.blob'],
      [{ serviceProperties: { note: 'é'.repeat(4 * KB + 1) } }, 'serviceProperties.note'],
    ];
    for (const [body, field] of cases) {
      const response = await patch('lim-1', body);
      expect({ field, status: response.status, code: response.body.code, at: response.body.field }).toEqual({
        field,
        status: 400,
        code: 'InvalidRequest',
        at: field,
      });
      expect(response.body.detail).toContain('8192');
    }
    const atTheLimit = await patch('lim-1', { tags: { blob: 'x'.repeat(8 * KB) } });
    expect(atTheLimit.status).toBe(200);
    expect(atTheLimit.body).toMatchObject({ version: 2, serviceProperties: {} }); // the refused patches wrote nothing
  });

  it('stops a twin at 64 KB of tags and service properties; patches that shrink it still pass', async () => {
    await provision('lim-2');
    const sevenKb = 'x'.repeat(7 * KB);
    let status = 200;
    let patches = 0;
    let refused: Record<string, unknown> = {};
    while (status === 200 && patches < 20) {
      const response = await patch('lim-2', { tags: { [`t${patches}`]: sevenKb } });
      status = response.status;
      refused = response.body;
      patches++;
    }
    expect(patches).toBe(10); // nine 7 KB tags fit in 64 KB, the tenth does not
    expect(refused).toMatchObject({ status: 400, code: 'InvalidRequest', field: 'tags' });
    expect(refused.detail).toContain(String(64 * KB));
    const spRefused = await patch('lim-2', { serviceProperties: { big: sevenKb } });
    expect(spRefused.body).toMatchObject({ code: 'InvalidRequest', field: 'serviceProperties' });
    expect((await patch('lim-2', { tags: { t0: null, t1: 'small' } })).status).toBe(200);
  });

  it('applies the same limits to PUT /devices/{id}', async () => {
    const tooLong = await provision('lim-3', { serviceProperties: { note: 'x'.repeat(8 * KB + 1) } });
    expect(tooLong.body).toMatchObject({ status: 400, code: 'InvalidRequest', field: 'serviceProperties.note' });
    const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`s${i}`, 'y'.repeat(600)]));
    // 100 values of 600 bytes fit the 64 KB request body but, with each one's timestamp, not the twin.
    const tooMuch = await provision('lim-3', { serviceProperties: many(100) });
    expect(tooMuch.body).toMatchObject({ status: 400, code: 'InvalidRequest', field: 'serviceProperties' });
    expect((await provision('lim-3', { tags: { site: 'x' }, serviceProperties: many(90) })).status).toBe(201);
  });

  it('answers tokens that are not continuation tokens with 400 InvalidContinuation, in the header or the query', async () => {
    for (let i = 0; i < 3; i++) await provision(`page-${i}`, { tags: { pages: 'yes' } });
    const first = await queryTwins('tag=pages:yes&pageSize=2');
    const token = first.headers['x-ms-continuation'];
    expect(token).toBeDefined();
    const next = await queryTwins('tag=pages:yes&pageSize=2', { 'x-ms-continuation': token });
    expect(next.body).toMatchObject({ count: 1 });
    expect((await queryTwins(`tag=pages:yes&pageSize=2&continuation=${encodeURIComponent(token)}`)).status).toBe(200);

    const garbage = ['garbage', 'x'.repeat(17 * KB), '42', '"text"', '[]', 'null'];
    for (const bad of garbage) {
      for (const response of [
        await queryTwins('tag=pages:yes&pageSize=2', { 'x-ms-continuation': bad }),
        await queryTwins(`tag=pages:yes&pageSize=2&continuation=${encodeURIComponent(bad)}`),
      ]) {
        expect({ bad: bad.slice(0, 20), status: response.status, body: response.body }).toMatchObject({
          bad: bad.slice(0, 20),
          status: 400,
          body: { code: 'InvalidContinuation', field: 'continuation' },
        });
      }
    }
    // Right shape, but the store cannot resume from it: the store's own refusal is InvalidContinuation too.
    const refusedByStore = await queryTwins('tag=pages:yes', { 'x-ms-continuation': '{}' });
    expect(refusedByStore.body).toMatchObject({ status: 400, code: 'InvalidContinuation', field: 'continuation' });
  });

  it('does the same for GET /devices/{id}/jobs', async () => {
    for (let i = 0; i < 3; i++) {
      const at = new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString();
      await jobs.create(
        newJob(`jl-${i}`, { type: 'readDeviceProperty', deviceId: 'jl', property: 'timezone' }, 'api', at, 60),
      );
    }
    const first = await listJobs('jl', 'pageSize=2');
    const token = first.headers['x-ms-continuation'];
    expect((await listJobs('jl', `pageSize=2&continuation=${encodeURIComponent(token)}`)).body).toMatchObject({
      count: 1,
    });
    for (const [bad, where] of [
      ['garbage', 'header'],
      ['garbage', 'query'],
      ['[1]', 'header'],
      ['{"token":42}', 'query'],
    ]) {
      const response =
        where === 'header'
          ? await listJobs('jl', 'pageSize=2', { 'x-ms-continuation': bad })
          : await listJobs('jl', `pageSize=2&continuation=${encodeURIComponent(bad)}`);
      expect({ bad, where, body: response.body }).toMatchObject({
        bad,
        where,
        body: { status: 400, code: 'InvalidContinuation', field: 'continuation' },
      });
    }
  });
});
