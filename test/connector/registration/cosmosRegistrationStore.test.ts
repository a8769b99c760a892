/** The durable registration store against the local Cosmos server. */
import { Container } from '@azure/cosmos';
import {
  CosmosRegistrationStore,
  openRegistrationsContainer,
} from '../../../connector/registration/cosmosRegistrationStore';
import { Registration } from '../../../connector/registration/registration';
import { RECORD_TTL_MARGIN_SECONDS } from '../../../connector/registration/registrationStore';
import { TestCosmos, startTestCosmos } from '../../support/localCosmos';

function registration(endpoint: string, id: string, connectorId = 'connector-a'): Registration {
  return {
    id,
    endpoint,
    transport: 'coap',
    address: { address: '127.0.0.1', port: 40000 },
    lifetime: 300,
    binding: 'U',
    lwm2mVersion: '1.1',
    rootPath: '',
    objects: [{ objectId: 3, instanceId: 0 }],
    registeredAt: 1_000_000,
    updatedAt: 1_000_000,
    expiresAt: 1_300_000,
    connectorId,
    observations: { batteryLevel: -2_000_000_000, timezone: 1_234_567 },
    // Optional fields a restore must keep: the DTLS identity that owns it above all.
    identity: `psk-${endpoint}`,
    contentFormats: [112, 11542],
    serverInstanceId: 1,
  };
}

describe('CosmosRegistrationStore', () => {
  let cosmos: TestCosmos;
  let container: Container;
  const now = () => 1_000_000;

  beforeAll(async () => {
    cosmos = await startTestCosmos();
    container = await openRegistrationsContainer(cosmos.client, 'registrations-test');
  });
  afterAll(() => cosmos.close());

  it('saves one record per endpoint and loads a connector’s own, exactly as saved', async () => {
    const store = new CosmosRegistrationStore(container, now);
    await store.save(registration('dev-a', 'r1'));
    await store.save(registration('dev-a', 'r2'));
    await store.save(registration('dev-b', 'r3', 'connector-b'));
    expect(await store.loadAll('connector-a')).toEqual([registration('dev-a', 'r2')]);
    expect(await store.loadAll('connector-b')).toEqual([registration('dev-b', 'r3', 'connector-b')]);
    const { resource } = await container.item('dev-a', 'dev-a').read();
    expect(resource).toMatchObject({ id: 'dev-a', deviceId: 'dev-a', registrationId: 'r2' });
    expect(resource.ttl).toBe(300 + RECORD_TTL_MARGIN_SECONDS);
  });

  it('stores a registration whose lifetime is past what a Cosmos ttl can say', async () => {
    const store = new CosmosRegistrationStore(container, now);
    const forever = {
      ...registration('dev-long', 'r9'),
      lifetime: 0xffffffff,
      expiresAt: 1_000_000 + 0xffffffff * 1000,
    };
    await store.save(forever);
    expect(await store.loadAll('connector-a')).toContainEqual(forever);
  });

  it('removes a record only while it is still the given registration', async () => {
    const writer = new CosmosRegistrationStore(container, now);
    await writer.save(registration('dev-c', 'old'));
    // Another instance (or a restarted one) replaces it; the first one's late removal leaves the new record alone.
    const other = new CosmosRegistrationStore(container, now);
    await other.save(registration('dev-c', 'new', 'connector-c'));
    await writer.remove('dev-c', 'old');
    expect(await other.loadAll('connector-c')).toEqual([registration('dev-c', 'new', 'connector-c')]);
    // A store that never wrote it checks whose it is first.
    await new CosmosRegistrationStore(container, now).remove('dev-c', 'old');
    expect(await other.loadAll('connector-c')).toHaveLength(1);
    await new CosmosRegistrationStore(container, now).remove('dev-c', 'new');
    expect(await other.loadAll('connector-c')).toEqual([]);
    await expect(writer.remove('dev-c', 'new')).resolves.toBeUndefined();
  });
});
