import { HttpRequest, HttpResponseInit, app } from '@azure/functions';
import { rotateCredentials } from '../shared/twinOperations';
import { credentialDependencies, twinStore } from './index';
import { jsonResponse, readJsonBody, withProblems } from './lib/httpAdapter';

/**
 * POST /api/devices/{deviceId}/credentials: replaces the device's credentials. Body `{ "security": ... }` as on
 * provisioning. 200 `{ deviceId, security }`, with `security.key` once when the service generated it
 * (`Cache-Control: no-store`). The connector ends the device's DTLS session when it sees the new record (its
 * change feed, about a second); the device then handshakes with the new key.
 */
export async function rotateCredentialsHandler(request: HttpRequest): Promise<HttpResponseInit> {
  const deviceId = request.params.deviceId;
  const body = await readJsonBody(request);
  const { twin, security } = await rotateCredentials(await twinStore(), await credentialDependencies(), deviceId, body);
  return jsonResponse(
    200,
    { deviceId: twin.deviceId, security },
    { Location: `/api/twins/${encodeURIComponent(deviceId)}`, 'Cache-Control': 'no-store' },
  );
}

app.http('rotateCredentials', {
  methods: ['POST'],
  route: 'devices/{deviceId}/credentials',
  authLevel: 'function',
  handler: withProblems(rotateCredentialsHandler),
});
