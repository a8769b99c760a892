import { isTwinError } from '../../shared/errors';
import {
  jobRequestOf,
  newJob,
  parseJobMessage,
  parseJobRequest,
  sameJobRequest,
  toJobMessage,
  toJobView,
} from '../../shared/job';

function rejection(body: unknown): { code?: string; field?: unknown; status?: number; message?: string } {
  try {
    parseJobRequest(body);
  } catch (error) {
    if (isTwinError(error)) {
      return { code: error.code, field: error.extensions.field, status: error.status, message: error.message };
    }
    throw error;
  }
  throw new Error(`accepted ${JSON.stringify(body)}`);
}

describe('parseJobRequest', () => {
  it('accepts the three request kinds of ARCHITECTURE.md, with an optional jobId', () => {
    expect(parseJobRequest({ type: 'readDeviceProperty', deviceId: 'sim-001', property: 'batteryLevel' })).toEqual({
      request: { type: 'readDeviceProperty', deviceId: 'sim-001', property: 'batteryLevel' },
      jobId: undefined,
    });
    expect(
      parseJobRequest({
        type: 'writeDeviceProperty',
        deviceId: 'sim-001',
        property: 'timezone',
        value: 'Europe/Paris',
        jobId: 'my-job-1',
      }),
    ).toEqual({
      request: { type: 'writeDeviceProperty', deviceId: 'sim-001', property: 'timezone', value: 'Europe/Paris' },
      jobId: 'my-job-1',
    });
    expect(
      parseJobRequest({ type: 'executeDeviceOperation', deviceId: 'sim-001', operation: 'reboot' }).request,
    ).toEqual({ type: 'executeDeviceOperation', deviceId: 'sim-001', operation: 'reboot' });
  });

  it('names the field of every kind of bad input, with 400 for malformed and 422 for the wrong capability', () => {
    const read = { type: 'readDeviceProperty', deviceId: 'd1', property: 'batteryLevel' };
    const write = { type: 'writeDeviceProperty', deviceId: 'd1', property: 'timezone', value: 'UTC' };
    const cases: [unknown, string, string, number][] = [
      [[1], 'InvalidRequest', '', 400],
      ['text', 'InvalidRequest', '', 400],
      [{ ...read, type: 'readAll' }, 'InvalidRequest', 'type', 400],
      [{ deviceId: 'd1' }, 'InvalidRequest', 'type', 400],
      [{ ...read, deviceId: 7 }, 'InvalidDeviceId', 'deviceId', 400],
      [{ ...read, deviceId: 'a b' }, 'InvalidDeviceId', 'deviceId', 400],
      [{ ...read, property: 'flux' }, 'InvalidRequest', 'property', 400],
      [{ ...read, property: undefined }, 'InvalidRequest', 'property', 400],
      [{ ...read, value: 3 }, 'InvalidRequest', 'value', 400],
      [{ ...read, colour: 'red' }, 'InvalidRequest', 'colour', 400],
      [{ ...read, jobId: 'has space' }, 'InvalidRequest', 'jobId', 400],
      [{ ...read, jobId: 'x'.repeat(129) }, 'InvalidRequest', 'jobId', 400],
      [{ ...read, property: 'firmwarePackageUri' }, 'PropertyNotReadable', 'property', 422],
      [{ ...read, property: 'reboot' }, 'PropertyNotReadable', 'property', 422],
      [{ ...write, property: 'batteryLevel', value: 5 }, 'PropertyNotWritable', 'property', 422],
      [{ ...write, value: 'Mars/Olympus' }, 'InvalidValue', 'value', 400],
      [{ ...write, value: 3 }, 'InvalidValue', 'value', 400],
      [{ type: 'writeDeviceProperty', deviceId: 'd1', property: 'timezone' }, 'InvalidValue', 'value', 400],
      [{ ...write, property: 'registrationLifetime', value: 0 }, 'InvalidValue', 'value', 400],
      [{ ...write, property: 'registrationLifetime', value: 1.5 }, 'InvalidValue', 'value', 400],
      [
        { type: 'executeDeviceOperation', deviceId: 'd1', operation: 'timezone' },
        'OperationNotExecutable',
        'operation',
        422,
      ],
      [{ type: 'executeDeviceOperation', deviceId: 'd1', property: 'reboot' }, 'InvalidRequest', 'property', 400],
    ];
    for (const [body, code, field, status] of cases) {
      const got = rejection(body);
      expect({ body, code: got.code, field: got.field, status: got.status }).toEqual({ body, code, field, status });
    }
    expect(rejection({ ...read, property: 'flux' }).message).toContain('batteryLevel');
  });
});

describe('job messages and records', () => {
  it('parses a message from an object, a JSON string or bytes, and requires a jobId', () => {
    const message = { type: 'executeDeviceOperation', deviceId: 'd1', operation: 'reboot', jobId: 'j1' };
    expect(parseJobMessage(message)).toEqual(message);
    expect(parseJobMessage(JSON.stringify(message))).toEqual(message);
    expect(parseJobMessage(Buffer.from(JSON.stringify(message)))).toEqual(message);
    expect(() => parseJobMessage({ ...message, jobId: undefined })).toThrow(/jobId/);
    expect(() => parseJobMessage('{not json')).toThrow(/not JSON/);
  });

  it('compares requests for idempotent submission, ignoring the jobId', () => {
    const a = parseJobRequest({
      type: 'writeDeviceProperty',
      deviceId: 'd1',
      property: 'timezone',
      value: 'UTC',
    }).request;
    const b = parseJobRequest({
      jobId: 'x',
      value: 'UTC',
      property: 'timezone',
      deviceId: 'd1',
      type: 'writeDeviceProperty',
    }).request;
    const c = parseJobRequest({
      type: 'writeDeviceProperty',
      deviceId: 'd1',
      property: 'timezone',
      value: 'GMT',
    }).request;
    expect(sameJobRequest(a, b)).toBe(true);
    expect(sameJobRequest(a, c)).toBe(false);
    expect(sameJobRequest(a, { ...a, deviceId: 'd2' })).toBe(false);
  });

  it('builds a queued record, its message and its view', () => {
    const request = parseJobRequest({ type: 'readDeviceProperty', deviceId: 'd1', property: 'batteryLevel' }).request;
    const job = newJob('j1', request, 'api', '2026-01-01T00:00:00.000Z', 60);
    expect(job).toMatchObject({ id: 'j1', deviceId: 'd1', status: 'queued', attempts: 0, ttl: 60 });
    expect(toJobMessage(job)).toEqual({ ...request, jobId: 'j1' });
    expect(jobRequestOf(job)).toEqual(request);
    const view = toJobView({ ...job, _etag: 'e' });
    expect(view).toEqual({
      jobId: 'j1',
      type: 'readDeviceProperty',
      deviceId: 'd1',
      property: 'batteryLevel',
      status: 'queued',
      createdTime: '2026-01-01T00:00:00.000Z',
      attempts: 0,
      origin: 'api',
    });
  });
});
