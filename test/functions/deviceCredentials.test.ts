/**
 * Device credentials over HTTP (issue 10): PUT /devices/{id} with `security`, POST /devices/{id}/credentials,
 * DELETE /devices/{id}; handlers wrapped as the app wraps them, the Functions library's own HttpRequest, the local
 * Cosmos server. The `credentials` container is read here as the connector reads it (the app never reads it).
 */
import { Container } from '@azure/cosmos';
import { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { deprovisionDeviceHandler } from '../../functions/deprovisionDevice';
import { getTwinHandler } from '../../functions/getTwin';
import { withProblems } from '../../functions/lib/httpAdapter';
import { provisionDeviceHandler } from '../../functions/provisionDevice';
import { rotateCredentialsHandler } from '../../functions/rotateCredentials';
import { EMULATOR_KEY } from '../../local/cosmosServer';
import { openCredentialsContainer } from '../../shared/cosmosCredentialWriter';
import { CredentialRecord, REVOKED_CREDENTIAL_TTL_SECONDS } from '../../shared/deviceCredentials';
import { TestCosmos, startTestCosmos } from '../support/localCosmos';

type Handler = (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Record<string, string>;
  /** Everything the client receives, as text (to look for keys). */
  text: string;
}

async function call(
  handler: Handler,
  init: { method: string; path: string; body?: unknown },
  params: Record<string, string>,
): Promise<Answer> {
  const request = new HttpRequest({
    method: init.method,
    url: `http://localhost/api${init.path}`,
    headers: init.body !== undefined ? { 'content-type': 'application/json' } : {},
    ...(init.body !== undefined && { body: { string: JSON.stringify(init.body) } }),
    params,
  });
  const response = await withProblems(handler)(request, new InvocationContext({ functionName: 'test' }));
  const headers = (response.headers ?? {}) as Record<string, string>;
  return {
    status: response.status ?? 200,
    body: response.jsonBody as Record<string, unknown>,
    headers,
    text: JSON.stringify({ body: response.jsonBody, headers }),
  };
}

const provision = (deviceId: string, body?: unknown) =>
  call(provisionDeviceHandler, { method: 'PUT', path: `/devices/${deviceId}`, body }, { deviceId });
const rotate = (deviceId: string, body?: unknown) =>
  call(rotateCredentialsHandler, { method: 'POST', path: `/devices/${deviceId}/credentials`, body }, { deviceId });
const deprovision = (deviceId: string) =>
  call(deprovisionDeviceHandler, { method: 'DELETE', path: `/devices/${deviceId}` }, { deviceId });
const getTwin = (deviceId: string) => call(getTwinHandler, { method: 'GET', path: `/twins/${deviceId}` }, { deviceId });

const KEY32_HEX = 'a1'.repeat(32);

describe('device credentials over HTTP', () => {
  let cosmos: TestCosmos;
  let credentials: Container;
  let twins: Container;
  const stored = async (deviceId: string) =>
    (await credentials.item(deviceId, deviceId).read<CredentialRecord>()).resource;

  beforeAll(async () => {
    cosmos = await startTestCosmos();
    process.env.CosmosDb__accountEndpoint = cosmos.server.endpoint;
    process.env.CosmosDb__accountKey = EMULATOR_KEY;
    process.env.CosmosDb__trustedCertificatePath = cosmos.server.certPath;
    process.env.CosmosDb__databaseName = 'credentials-http';
    process.env.Connector__apiKey = 'test-connector-key';
    credentials = await openCredentialsContainer(cosmos.client, 'credentials-http');
    twins = cosmos.client.database('credentials-http').container('twins');
  });
  afterAll(() => cosmos.close());

  it('refuses a PUT without security (400 naming it, telling to say none) and creates nothing', async () => {
    const answer = await provision('cred-missing', { tags: { site: 'a' } });
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ code: 'InvalidRequest', field: 'security' });
    expect(String(answer.body.detail)).toContain('"mode":"none"');
    expect((await provision('cred-missing')).body).toMatchObject({ field: 'security' });
    expect((await getTwin('cred-missing')).status).toBe(404);
    expect(await stored('cred-missing')).toBeUndefined();
  });

  it('refuses a bad key with 400 naming security.key, without echoing it', async () => {
    const key = 'not-hex-nor-base64!'.repeat(2);
    const answer = await provision('cred-badkey', { security: { mode: 'psk', key } });
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ field: 'security.key' });
    expect(answer.text).not.toContain(key);
    expect((await provision('cred-badkey', { security: { mode: 'psk', key: 'ab'.repeat(8) } })).body).toMatchObject({
      field: 'security.key',
    });
    expect((await getTwin('cred-badkey')).status).toBe(404);
  });

  it('generates a PSK, returns it once in the 201, stores it, and never shows it again', async () => {
    const created = await provision('cred-gen', { security: { mode: 'psk' }, tags: { site: 'plant-7' } });
    expect(created.status).toBe(201);
    expect(created.headers['Cache-Control']).toBe('no-store');
    const security = created.body.security as { mode: string; identity: string; key: string };
    expect(security).toEqual({ mode: 'psk', identity: 'cred-gen', key: expect.any(String) });
    expect(Buffer.from(security.key, 'base64')).toHaveLength(16);

    const record = await stored('cred-gen');
    expect(record).toMatchObject({ deviceId: 'cred-gen', mode: 'psk', identity: 'cred-gen', key: security.key });
    expect(record?.revoked).toBe(false);
    expect(record?.ttl).toBeUndefined();

    const read = await getTwin('cred-gen');
    expect(read.status).toBe(200);
    expect(read.body.security).toEqual({ mode: 'psk', identity: 'cred-gen' });
    expect(read.text).not.toContain(security.key);

    const again = await provision('cred-gen', { security: { mode: 'psk' } });
    expect(again.status).toBe(200);
    expect(again.body.security).toEqual({ mode: 'psk', identity: 'cred-gen' });
    expect(again.text).not.toContain(security.key);
    expect((await stored('cred-gen'))?.key).toBe(security.key);

    // The key is nowhere in the twins container.
    const { resource: twin } = await twins.item('cred-gen', 'cred-gen').read();
    expect(JSON.stringify(twin)).not.toContain(security.key);
  });

  it('takes a given key in hex or base64 and identity, and returns no key', async () => {
    const hex = await provision('cred-hex', { security: { mode: 'psk', identity: 'hex-identity', key: KEY32_HEX } });
    expect(hex.status).toBe(201);
    expect(hex.body.security).toEqual({ mode: 'psk', identity: 'hex-identity' });
    expect(await stored('cred-hex')).toMatchObject({
      identity: 'hex-identity',
      key: Buffer.from(KEY32_HEX, 'hex').toString('base64'),
    });

    const base64 = Buffer.alloc(24, 5).toString('base64');
    expect((await provision('cred-b64', { security: { mode: 'psk', key: base64 } })).body.security).toEqual({
      mode: 'psk',
      identity: 'cred-b64',
    });
    expect((await stored('cred-b64'))?.key).toBe(base64);
  });

  it('provisions mode none explicitly', async () => {
    const created = await provision('cred-none', { security: { mode: 'none' } });
    expect(created.status).toBe(201);
    expect(created.body.security).toEqual({ mode: 'none' });
    expect(await stored('cred-none')).toMatchObject({ mode: 'none', revoked: false });
    expect((await stored('cred-none'))?.key).toBeUndefined();
  });

  it('rotates: a new version with a new key returned once; the twin view follows; unknown devices are 404', async () => {
    const first = (await provision('cred-rot', { security: { mode: 'psk' } })).body.security as { key: string };
    const before = await stored('cred-rot');

    const rotated = await rotate('cred-rot', { security: { mode: 'psk', identity: 'rot-2' } });
    expect(rotated.status).toBe(200);
    expect(rotated.headers['Cache-Control']).toBe('no-store');
    const security = rotated.body.security as { mode: string; identity: string; key: string };
    expect(security).toEqual({ mode: 'psk', identity: 'rot-2', key: expect.any(String) });
    expect(security.key).not.toBe(first.key);
    const after = await stored('cred-rot');
    expect(after).toMatchObject({ identity: 'rot-2', key: security.key, revoked: false });
    expect(after!.version).toBeGreaterThanOrEqual(before!.version);
    expect((await getTwin('cred-rot')).body.security).toEqual({ mode: 'psk', identity: 'rot-2' });

    const given = await rotate('cred-rot', { security: { mode: 'psk', identity: 'rot-2', key: KEY32_HEX } });
    expect(given.body.security).toEqual({ mode: 'psk', identity: 'rot-2' });
    expect((await stored('cred-rot'))?.key).toBe(Buffer.from(KEY32_HEX, 'hex').toString('base64'));

    expect((await rotate('cred-rot', { security: { mode: 'psk', key: 'zz' } })).body).toMatchObject({
      field: 'security.key',
    });
    expect((await rotate('cred-rot', {})).body).toMatchObject({ field: 'security' });
    expect((await rotate('cred-rot', { security: { mode: 'psk' }, tags: {} })).body).toMatchObject({ field: 'tags' });
    expect((await rotate('cred-unknown', { security: { mode: 'psk' } })).status).toBe(404);
    expect(await stored('cred-unknown')).toBeUndefined();
  });

  it('deprovisioning revokes: the record stays revoked, without key, with a ttl; provisioning again writes a fresh one', async () => {
    await provision('cred-gone', { security: { mode: 'psk', key: KEY32_HEX } });
    expect((await deprovision('cred-gone')).status).toBe(204);
    const revoked = await stored('cred-gone');
    expect(revoked).toMatchObject({ deviceId: 'cred-gone', revoked: true, ttl: REVOKED_CREDENTIAL_TTL_SECONDS });
    expect(revoked?.key).toBeUndefined();
    expect(revoked?.identity).toBeUndefined();
    expect((await deprovision('cred-gone')).status).toBe(404);
    expect((await rotate('cred-gone', { security: { mode: 'psk' } })).status).toBe(404);

    const again = await provision('cred-gone', { security: { mode: 'psk' } });
    expect(again.status).toBe(201);
    const fresh = await stored('cred-gone');
    expect(fresh).toMatchObject({ revoked: false, key: (again.body.security as { key: string }).key });
    expect(fresh?.ttl).toBeUndefined();
    expect(fresh!.version).toBeGreaterThanOrEqual(revoked!.version);
  });
});
