import { HttpRequest, HttpResponseInit, InvocationContext, app } from '@azure/functions';
import { deprovisionDevice } from '../shared/twinOperations';
import { connectorClient, credentialDependencies, twinStore } from './index';
import { withProblems } from './lib/httpAdapter';

/**
 * DELETE /api/devices/{deviceId}: 204; the device's credentials are revoked (the connector ends its DTLS session),
 * it may no longer register, and its registration ends at once.
 */
export async function deprovisionDeviceHandler(
  request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  const connectors = await connectorClient();
  const { connectorError } = await deprovisionDevice(
    await twinStore(),
    await credentialDependencies(),
    request.params.deviceId,
    (url, deviceId) => connectors.endRegistration(url, deviceId),
  );
  if (connectorError) {
    context.warn('deprovisioned, but the connector was not told; it ends the registration at its next write', {
      deviceId: request.params.deviceId,
      error: connectorError instanceof Error ? connectorError.message : String(connectorError),
    });
  }
  return { status: 204 };
}

app.http('deprovisionDevice', {
  methods: ['DELETE'],
  route: 'devices/{deviceId}',
  authLevel: 'function',
  handler: withProblems(deprovisionDeviceHandler),
});
