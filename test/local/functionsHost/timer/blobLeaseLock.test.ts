import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { BlobLeaseLock } from '../../../../local/functionsHost/timer/blobLeaseLock';
import { BlobScheduleStatusStore } from '../../../../local/functionsHost/timer/blobScheduleStatusStore';
import {
  createWebJobsHostsContainer,
  WEB_JOBS_HOSTS_CONTAINER,
} from '../../../../local/functionsHost/timer/webJobsStorage';
import { startTestAzurite, type TestAzurite } from '../support/azuriteBlob';

describe('timer storage on Azurite', () => {
  let azurite: TestAzurite;
  let container: ContainerClient;

  beforeAll(async () => {
    azurite = await startTestAzurite();
    container = createWebJobsHostsContainer({ AzureWebJobsStorage: azurite.connectionString }, 'test');
  });

  afterAll(async () => {
    await azurite?.stop();
  });

  it('lets one lock instance hold the lease at a time and hands it over on release', async () => {
    const blobName = 'locks/test-app/Host.Functions.sweep.Listener';
    const hostA = new BlobLeaseLock(container, blobName, 15);
    const hostB = new BlobLeaseLock(container, blobName, 15);

    expect(await hostA.tryAcquire()).toBe(true);
    expect(await hostB.tryAcquire()).toBe(false);
    expect(await hostA.tryAcquire()).toBe(true);
    expect(await hostA.renew()).toBe(true);
    expect(await hostB.renew()).toBe(false);

    const properties = await container.getBlobClient(blobName).getProperties();
    expect(properties.leaseState).toBe('leased');
    expect(properties.leaseDuration).toBe('fixed');

    await hostA.release();
    expect(await hostA.renew()).toBe(false);
    expect(await hostB.tryAcquire()).toBe(true);
    await hostB.release();
    await hostB.release();
  });

  it('clamps the lease to the blob service range', () => {
    expect(new BlobLeaseLock(container, 'x', 1).leaseSeconds).toBe(15);
    expect(new BlobLeaseLock(container, 'x', 600).leaseSeconds).toBe(60);
  });

  it('stores the schedule status as the runtime does and reads a missing one as none', async () => {
    const store = new BlobScheduleStatusStore(container, 'timers/test-app/Host.Functions.sweep/status');
    expect(await store.read()).toBeUndefined();
    const status = {
      last: '2026-01-01T10:00:00.000Z',
      next: '2026-01-01T10:01:00.000Z',
      lastUpdated: '2026-01-01T10:00:00.100Z',
    };
    await store.write(status);
    expect(await store.read()).toEqual(status);
    const stored = await container.getBlobClient('timers/test-app/Host.Functions.sweep/status').downloadToBuffer();
    expect(JSON.parse(stored.toString('utf8'))).toEqual({
      Last: status.last,
      Next: status.next,
      LastUpdated: status.lastUpdated,
    });
  });

  it('creates the container when it is missing', async () => {
    const service = BlobServiceClient.fromConnectionString(azurite.connectionString);
    await service.getContainerClient(WEB_JOBS_HOSTS_CONTAINER).deleteIfExists();
    const lock = new BlobLeaseLock(container, 'locks/test-app/again.Listener', 15);
    expect(await lock.tryAcquire()).toBe(true);
    await lock.release();
  });

  it('explains a missing or identity-based AzureWebJobsStorage', () => {
    expect(() => createWebJobsHostsContainer({}, "Timer function 'sweep'")).toThrow(
      /Timer function 'sweep' needs the app setting AzureWebJobsStorage/,
    );
    expect(() => createWebJobsHostsContainer({ AzureWebJobsStorage__accountName: 'acct' }, 'x')).toThrow(
      /identity-based storage settings .* are not supported by the local host/,
    );
  });
});
