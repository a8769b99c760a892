/**
 * One catalogue of coded errors. Each code is stable (clients may switch on it) and carries the HTTP
 * status it maps to; `toProblem` is the one mapper to `application/problem+json`.
 */

export const ERRORS = {
  InvalidDeviceId: { status: 400, title: 'Invalid device id' },
  InvalidRequest: { status: 400, title: 'Invalid request' },
  InvalidJson: { status: 400, title: 'Malformed JSON body' },
  InvalidQuery: { status: 400, title: 'Invalid query' },
  InvalidContinuation: { status: 400, title: 'Continuation token not valid' },
  InvalidValue: { status: 400, title: 'Invalid property value' },
  Unauthorized: { status: 401, title: 'Missing or wrong key' },
  DeviceNotFound: { status: 404, title: 'Device not provisioned' },
  PropertyNotFound: { status: 404, title: 'Unknown device property' },
  JobNotFound: { status: 404, title: 'Job not found' },
  NotFound: { status: 404, title: 'Not found' },
  MethodNotAllowed: { status: 405, title: 'Method not allowed' },
  DevicePropertiesReadOnly: { status: 409, title: 'Device properties belong to the device' },
  JobConflict: { status: 409, title: 'Job id already used with another request' },
  JobNotCancellable: { status: 409, title: 'Job is no longer queued' },
  PreconditionFailed: { status: 412, title: 'The twin changed since the given ETag' },
  PayloadTooLarge: { status: 413, title: 'Request body too large' },
  UnsupportedMediaType: { status: 415, title: 'Unsupported media type' },
  PropertyNotReadable: { status: 422, title: 'Property is not readable' },
  PropertyNotWritable: { status: 422, title: 'Property is not writable' },
  OperationNotExecutable: { status: 422, title: 'Not an executable operation' },
  DeviceNotConnected: { status: 503, title: 'Device is not connected' },
  DeviceTimeout: { status: 504, title: 'Device did not answer in time' },
  DeviceRejected: { status: 502, title: 'Device rejected the request' },
  /**
   * A queue-mode device is asleep (no message from it within the awake window): the connector answers at once, and a
   * job waits for the device's next Register/Update; a job still waiting at its `expiresAt` fails with this code.
   */
  DeviceAsleep: { status: 503, title: 'Queue-mode device is asleep' },
  ConnectorUnavailable: { status: 503, title: 'Connector unreachable' },
  JobQueueUnavailable: { status: 503, title: 'The job queue did not take the job' },
  /** A write or execute whose request may have reached the device, with no answer to say whether it was applied. */
  MayHaveRun: { status: 504, title: 'The device may have applied the request; its outcome is unknown' },
  Internal: { status: 500, title: 'Internal error' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERRORS;

export class TwinError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra members for the problem document (for example `field`, `coapCode`). */
  readonly extensions: Record<string, unknown>;

  constructor(code: ErrorCode, detail: string, extensions: Record<string, unknown> = {}) {
    super(detail);
    this.name = 'TwinError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.extensions = extensions;
  }
}

export function isTwinError(error: unknown, code?: ErrorCode): error is TwinError {
  return error instanceof TwinError && (code === undefined || error.code === code);
}

/** RFC 9457 problem details, with the stable `code` member. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  [extension: string]: unknown;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export function toProblem(error: TwinError): Problem {
  return {
    ...error.extensions,
    type: `urn:lwm2m-twins:problem:${error.code}`,
    title: ERRORS[error.code].title,
    status: error.status,
    detail: error.message,
    code: error.code,
  };
}
