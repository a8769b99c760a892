/**
 * The twins HTTP API end to end: real HTTP through the local Functions host, the real @azure/functions
 * library, and the local Cosmos server.
 */
import { api, uniqueDeviceId } from './stackClient';

type Json = Record<string, unknown>;

describe('provisioning and shallow reads', () => {
  it('provisions (201, then 200), reads with ETag, 304 on If-None-Match, deprovisions', async () => {
    const id = uniqueDeviceId('dev');
    const created = await api('PUT', `/devices/${id}`, {
      body: { security: { mode: 'none' }, tags: { site: 'plant-7' } },
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe(`/api/twins/${id}`);
    expect(await api('PUT', `/devices/${id}`, { body: { security: { mode: 'none' } } })).toMatchObject({ status: 200 });

    const read = await api('GET', `/twins/${id}`);
    expect(read.status).toBe(200);
    const twin = read.body as Json;
    expect(twin).toMatchObject({ deviceId: id, connection: { state: 'never' }, tags: { site: 'plant-7' } });
    expect(twin).not.toHaveProperty('_rid');
    expect(twin).not.toHaveProperty('_etag');
    const etag = read.headers.get('etag');
    expect(etag).toMatch(/^".+"$/);
    expect(twin.etag).toBe(etag);

    const notModified = await api('GET', `/twins/${id}`, { headers: { 'if-none-match': etag as string } });
    expect(notModified.status).toBe(304);
    expect(notModified.text).toBe('');
    expect((await api('GET', `/twins/${id}`, { headers: { 'if-none-match': '"other"' } })).status).toBe(200);

    expect((await api('DELETE', `/devices/${id}`)).status).toBe(204);
    expect((await api('GET', `/twins/${id}`)).status).toBe(404);
    expect((await api('DELETE', `/devices/${id}`)).status).toBe(404);
  });

  it('device security: a generated PSK is returned once, never by a GET; rotation returns a new one; security is mandatory', async () => {
    const id = uniqueDeviceId('psk');
    const created = await api('PUT', `/devices/${id}`, { body: { security: { mode: 'psk' } } });
    expect(created.status).toBe(201);
    expect(created.headers.get('cache-control')).toBe('no-store');
    const { key } = (created.body as { security: { key: string } }).security;
    expect((created.body as Json).security).toEqual({ mode: 'psk', identity: id, key });
    expect(Buffer.from(key, 'base64')).toHaveLength(16);

    const read = await api('GET', `/twins/${id}`);
    expect((read.body as Json).security).toEqual({ mode: 'psk', identity: id });
    const again = await api('PUT', `/devices/${id}`, { body: { security: { mode: 'psk' } } });
    expect(again.status).toBe(200);
    const query = await api('GET', `/twins?pageSize=1000`);
    for (const answer of [read, again, query]) expect(answer.text).not.toContain(key);

    const rotated = await api('POST', `/devices/${id}/credentials`, { body: { security: { mode: 'psk' } } });
    expect(rotated.status).toBe(200);
    const next = (rotated.body as { security: { key: string } }).security.key;
    expect(next).toEqual(expect.any(String));
    expect(next).not.toBe(key);
    expect((await api('GET', `/twins/${id}`)).text).not.toContain(next);

    const missing = await api('PUT', `/devices/${uniqueDeviceId('nosec')}`, { body: { tags: { a: 1 } } });
    expect(missing).toMatchObject({ status: 400, body: { code: 'InvalidRequest', field: 'security' } });
    const badKey = await api('PUT', `/devices/${uniqueDeviceId('badkey')}`, {
      body: { security: { mode: 'psk', key: 'abcd' } },
    });
    expect(badKey).toMatchObject({ status: 400, body: { field: 'security.key' } });
    expect((await api('DELETE', `/devices/${id}`)).status).toBe(204);
    expect((await api('POST', `/devices/${id}/credentials`, { body: { security: { mode: 'psk' } } })).status).toBe(404);
  });

  it('answers an unknown device with 404 problem+json and a bad device id with 400', async () => {
    const missing = await api('GET', `/twins/${uniqueDeviceId('nobody')}`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toContain('application/problem+json');
    expect(missing.body).toMatchObject({ status: 404, code: 'DeviceNotFound', title: expect.any(String) });

    for (const bad of ['a%20b', "it's", 'x'.repeat(129), '-leading', 'semi%3Bcolon']) {
      const response = await api('PUT', `/devices/${bad}`, { body: { security: { mode: 'none' } } });
      expect({ bad, status: response.status, code: (response.body as Json)?.code }).toEqual({
        bad,
        status: 400,
        code: 'InvalidDeviceId',
      });
    }
  });

  it('reads one device property: 404 naming the catalog for an unknown name', async () => {
    const id = uniqueDeviceId('prop');
    await api('PUT', `/devices/${id}`, { body: { security: { mode: 'none' } } });
    const unknown = await api('GET', `/twins/${id}/deviceProperties/flux`);
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ code: 'PropertyNotFound' });
    expect((unknown.body as Json).detail).toContain('batteryLevel');
    const notYet = await api('GET', `/twins/${id}/deviceProperties/batteryLevel`);
    expect(notYet.status).toBe(404);
    expect((notYet.body as Json).detail).toContain('never');
  });
});

describe('PATCH /twins/{deviceId}', () => {
  it('merges tags and service properties, stamps lastUpdatedTime, removes with null', async () => {
    const id = uniqueDeviceId('patch');
    await api('PUT', `/devices/${id}`, { body: { security: { mode: 'none' }, tags: { site: 'a', floor: 2 } } });
    const patched = await api('PATCH', `/twins/${id}`, {
      body: { tags: { floor: null, line: 'L1' }, serviceProperties: { customerId: '123' } },
    });
    expect(patched.status).toBe(200);
    const twin = patched.body as { tags: Json; serviceProperties: Record<string, Json>; version: number };
    expect(twin.tags).toEqual({ site: 'a', line: 'L1' });
    expect(twin.serviceProperties.customerId.value).toBe('123');
    expect(Date.parse(twin.serviceProperties.customerId.lastUpdatedTime as string)).toBeGreaterThan(
      Date.now() - 60_000,
    );
    expect(patched.headers.get('etag')).not.toBeNull();
  });

  it('gives 412 for a stale If-Match and applies with the current one', async () => {
    const id = uniqueDeviceId('etag');
    const created = await api('PUT', `/devices/${id}`, { body: { security: { mode: 'none' } } });
    const firstEtag = created.headers.get('etag') as string;
    await api('PATCH', `/twins/${id}`, { body: { tags: { a: 1 } } });
    const lost = await api('PATCH', `/twins/${id}`, { body: { tags: { a: 2 } }, headers: { 'if-match': firstEtag } });
    expect(lost.status).toBe(412);
    expect(lost.body).toMatchObject({ code: 'PreconditionFailed' });
    const current = (await api('GET', `/twins/${id}`)).headers.get('etag') as string;
    const won = await api('PATCH', `/twins/${id}`, { body: { tags: { a: 3 } }, headers: { 'if-match': current } });
    expect(won.status).toBe(200);
    expect((won.body as { tags: Json }).tags.a).toBe(3);
  });

  it('refuses to touch deviceProperties with 409 and changes nothing', async () => {
    const id = uniqueDeviceId('ro');
    await api('PUT', `/devices/${id}`, { body: { security: { mode: 'none' }, tags: { keep: 'me' } } });
    const response = await api('PATCH', `/twins/${id}`, {
      body: { tags: { keep: 'changed' }, deviceProperties: { timezone: 'UTC' } },
    });
    expect(response.status).toBe(409);
    expect(response.body).toMatchObject({ code: 'DevicePropertiesReadOnly' });
    expect((response.body as Json).detail).toContain('job');
    expect(((await api('GET', `/twins/${id}`)).body as { tags: Json }).tags.keep).toBe('me');
  });

  it('never answers bad input with a 5xx', async () => {
    const id = uniqueDeviceId('bad');
    await api('PUT', `/devices/${id}`, { body: { security: { mode: 'none' } } });
    const cases: { name: string; rawBody?: string | Buffer; body?: unknown; headers?: Record<string, string> }[] = [
      { name: 'malformed JSON', rawBody: '{"tags": {', headers: { 'content-type': 'application/json' } },
      { name: 'array body', body: [1, 2] },
      { name: 'tags not an object', body: { tags: 'x' } },
      { name: 'nested tag value', body: { tags: { a: { b: 1 } } } },
      { name: 'unknown field', body: { colour: 'red' } },
      { name: 'connection', body: { connection: { state: 'connected' } } },
      { name: 'bad key', body: { tags: { 'a b': 1 } } },
      { name: 'wrong content type', rawBody: 'tags=1', headers: { 'content-type': 'text/plain' } },
      { name: 'huge body', rawBody: Buffer.alloc(70 * 1024, 'a'), headers: { 'content-type': 'application/json' } },
    ];
    for (const testCase of cases) {
      const response = await api('PATCH', `/twins/${id}`, testCase);
      expect({ name: testCase.name, clientError: response.status >= 400 && response.status < 500 }).toEqual({
        name: testCase.name,
        clientError: true,
      });
      expect(response.headers.get('content-type')).toContain('application/problem+json');
    }
    const huge = await api('PATCH', `/twins/${id}`, {
      rawBody: Buffer.alloc(70 * 1024, 'a'),
      headers: { 'content-type': 'application/json' },
    });
    expect(huge.status).toBe(413);
    const malformed = await api('PUT', `/devices/${uniqueDeviceId('m')}`, {
      rawBody: '{',
      headers: { 'content-type': 'application/json' },
    });
    expect(malformed).toMatchObject({ status: 400, body: { code: 'InvalidJson' } });
    expect(((await api('GET', `/twins/${id}`)).body as { version: number }).version).toBe(1);
  });
});

describe('GET /twins (query)', () => {
  const site = `q-${process.pid}-${Date.now()}`;

  it('combines a tag and a property filter over several pages, with SQL in values as data', async () => {
    // Device property values only come from devices; service properties are the caller's, so they drive this test.
    for (let i = 0; i < 7; i++) {
      const id = `${site}-${i}`;
      await api('PUT', `/devices/${id}`, {
        body: { security: { mode: 'none' }, tags: { site, kind: i % 2 ? 'odd' : 'even' } },
      });
      await api('PATCH', `/twins/${id}`, { body: { serviceProperties: { rank: i } } });
    }
    const seen: string[] = [];
    let continuation: string | null = null;
    let pages = 0;
    do {
      const query = `?tag=site:${encodeURIComponent(site)}&where=${encodeURIComponent('serviceProperties.rank lt 5')}&pageSize=2`;
      const response = await api('GET', `/twins${query}`, {
        headers: continuation ? { 'x-ms-continuation': continuation } : {},
      });
      expect(response.status).toBe(200);
      seen.push(...(response.body as { twins: { deviceId: string }[] }).twins.map((t) => t.deviceId));
      continuation = response.headers.get('x-ms-continuation');
      pages++;
    } while (continuation);
    expect(pages).toBeGreaterThanOrEqual(2);
    expect(seen.sort()).toEqual([0, 1, 2, 3, 4].map((i) => `${site}-${i}`));

    const both = await api('GET', `/twins?tag=site:${site}&tag=kind:odd&pageSize=1000`);
    expect((both.body as { twins: { deviceId: string }[] }).twins.map((t) => t.deviceId).sort()).toEqual(
      [1, 3, 5].map((i) => `${site}-${i}`),
    );

    for (const injection of ["' OR 1=1 --", '" OR true --', 'x; DROP TABLE c', 'SELECT * FROM c']) {
      const response = await api('GET', `/twins?tag=site:${encodeURIComponent(injection)}`);
      expect(response.status).toBe(200);
      expect((response.body as { twins: unknown[] }).twins).toEqual([]);
      const where = await api('GET', `/twins?where=${encodeURIComponent(`serviceProperties.rank eq ${injection}`)}`);
      expect(where.status).toBe(200);
      expect((where.body as { twins: unknown[] }).twins).toEqual([]);
    }
  });

  it('filters by connection state and rejects bad filters with 400 naming the field', async () => {
    const never = await api('GET', `/twins?tag=site:${site}&connectionState=never&pageSize=1000`);
    expect((never.body as { count: number }).count).toBe(7);
    const connected = await api('GET', `/twins?tag=site:${site}&connectionState=connected`);
    expect((connected.body as { count: number }).count).toBe(0);
    const stale = await api('GET', `/twins?tag=site:${site}&stale=true`);
    expect((stale.body as { count: number }).count).toBe(0);
    for (const [query, field] of [
      ['connectionState=sleepy', 'connectionState'],
      ['pageSize=1001', 'pageSize'],
      ['where=deviceProperties.flux lt 3', 'where'],
      ['where=deviceProperties.batteryLevel between 3', 'where'],
      ['colour=red', 'colour'],
      ['tag=nocolon', 'tag'],
    ]) {
      const response = await api('GET', `/twins?${query}`);
      expect({ query, status: response.status, field: (response.body as Json).field }).toEqual({
        query,
        status: 400,
        field,
      });
    }
  });
});

describe('limits and continuation tokens', () => {
  it('refuses a 60 KB tag with 400 naming it, and a garbage continuation token with 400 InvalidContinuation', async () => {
    const id = uniqueDeviceId('limit');
    await api('PUT', `/devices/${id}`, { body: { security: { mode: 'none' } } });
    const big = await api('PATCH', `/twins/${id}`, { body: { tags: { blob: 'x'.repeat(60 * 1024) } } });
    expect(big).toMatchObject({ status: 400, body: { code: 'InvalidRequest', field: 'tags.blob' } });
    expect(((await api('GET', `/twins/${id}`)).body as { version: number }).version).toBe(1);

    for (const headers of [{ 'x-ms-continuation': 'garbage' }, undefined]) {
      const route = headers ? '/twins?pageSize=1' : '/twins?pageSize=1&continuation=garbage';
      const response = await api('GET', route, { headers });
      expect(response).toMatchObject({ status: 400, body: { code: 'InvalidContinuation', field: 'continuation' } });
      const jobs = await api('GET', `/devices/${id}/jobs${headers ? '' : '?continuation=garbage'}`, { headers });
      expect(jobs).toMatchObject({ status: 400, body: { code: 'InvalidContinuation', field: 'continuation' } });
    }
  });
});
