/** The connector's configuration: what it requires, what it defaults, and what it refuses by name. */
import { ConfigError, loadConnectorConfig, loadJobsConfig } from '../../shared/config';

const minimal = {
  CosmosDb__accountEndpoint: 'https://cosmos.example:443/',
  ServiceBusConnection__fullyQualifiedNamespace: 'ns.servicebus.windows.net',
  Connector__apiKey: 'k',
};

describe('loadConnectorConfig', () => {
  it('publishes events through the namespace with AMQP unless told otherwise', () => {
    const config = loadConnectorConfig({ ...minimal, AZURE_CLIENT_ID: 'id-1' });
    expect(config.serviceBus).toEqual({
      connectionString: undefined,
      fullyQualifiedNamespace: 'ns.servicebus.windows.net',
      managedIdentityClientId: 'id-1',
    });
    expect(config.serviceBusTransport).toBe('amqp');
    expect(
      loadConnectorConfig({ ...minimal, Connector__serviceBusTransport: 'amqpWebSockets' }).serviceBusTransport,
    ).toBe('amqpWebSockets');
  });

  it('serves coaps on 5684 and plain CoAP unless turned off; booleans as ARM writes them (True/False)', () => {
    expect(loadConnectorConfig(minimal)).toMatchObject({ coapsPort: 5684, plainCoapEnabled: true });
    expect(loadConnectorConfig({ ...minimal, Connector__plainCoapEnabled: 'False' }).plainCoapEnabled).toBe(false);
    expect(loadConnectorConfig({ ...minimal, Connector__plainCoapEnabled: 'true' }).plainCoapEnabled).toBe(true);
    expect(() => loadConnectorConfig({ ...minimal, Connector__plainCoapEnabled: 'yes' })).toThrow(
      /Connector__plainCoapEnabled must be true or false/,
    );
  });

  it('takes a Short Server ID 1-65534 to pick the Server object instance; absent or 0 is none (the lowest)', () => {
    expect(loadConnectorConfig(minimal).shortServerId).toBeUndefined();
    expect(loadConnectorConfig({ ...minimal, Connector__shortServerId: '0' }).shortServerId).toBeUndefined();
    expect(loadConnectorConfig({ ...minimal, Connector__shortServerId: '123' }).shortServerId).toBe(123);
    expect(() => loadConnectorConfig({ ...minimal, Connector__shortServerId: '65535' })).toThrow(
      /Connector__shortServerId must be a Short Server ID from 1 to 65534/,
    );
    expect(() => loadConnectorConfig({ ...minimal, Connector__shortServerId: 'one' })).toThrow(
      /Connector__shortServerId must be an integer/,
    );
  });

  it('names the missing Service Bus setting and a transport it does not know', () => {
    const { ServiceBusConnection__fullyQualifiedNamespace: _, ...withoutServiceBus } = minimal;
    expect(() => loadConnectorConfig(withoutServiceBus)).toThrow(
      new ConfigError(
        'Missing app setting ServiceBusConnection__fullyQualifiedNamespace (or ServiceBusConnection locally)',
      ),
    );
    expect(() => loadConnectorConfig({ ...minimal, Connector__serviceBusTransport: 'http' })).toThrow(
      'Connector__serviceBusTransport must be one of amqp, amqpWebSockets; got "http"',
    );
  });
});

describe('loadJobsConfig', () => {
  it('sweeps unsent jobs every minute, re-sending after 2 min and failing after 30 min, unless told otherwise', () => {
    expect(loadJobsConfig({})).toMatchObject({
      queuedSweepSchedule: '0 */1 * * * *',
      queuedSweepAfterSeconds: 120,
      queuedMaxAgeSeconds: 1800,
    });
    expect(() => loadJobsConfig({ Jobs__queuedSweepAfterSeconds: '600', Jobs__queuedMaxAgeSeconds: '600' })).toThrow(
      new ConfigError('Jobs__queuedMaxAgeSeconds (600) must be above Jobs__queuedSweepAfterSeconds (600)'),
    );
  });
});
