import { CosmosJobStore, openJobsContainer } from '../../shared/cosmosJobStore';
import { JobDocument, newJob } from '../../shared/job';
import { TestCosmos, startTestCosmos } from '../support/localCosmos';

const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms).toISOString();
const readJob = (id: string, deviceId: string, createdMs: number): JobDocument =>
  newJob(id, { type: 'readDeviceProperty', deviceId, property: 'batteryLevel' }, 'api', at(createdMs), 3600);

describe('CosmosJobStore against the local Cosmos server', () => {
  let cosmos: TestCosmos;
  let store: CosmosJobStore;

  beforeAll(async () => {
    cosmos = await startTestCosmos();
    store = new CosmosJobStore(await openJobsContainer(cosmos.client, 'job-store-test'));
  });
  afterAll(() => cosmos.close());

  it('creates once, finds a job by its id alone and by device, and says undefined when missing', async () => {
    const first = await store.create(readJob('job-a', 'dev-1', 0));
    expect(first.created).toBe(true);
    const again = await store.create({ ...readJob('job-a', 'dev-1', 5), property: 'memoryFree' });
    expect(again).toMatchObject({ created: false, job: { id: 'job-a', property: 'batteryLevel' } });
    await store.create(readJob('job-b', 'dev-2', 0));
    expect(await store.get('job-b')).toMatchObject({ id: 'job-b', deviceId: 'dev-2' });
    expect((await store.get('job-a'))?._etag).toMatch(/.+/);
    expect(await store.read('dev-2', 'job-b')).toMatchObject({ id: 'job-b' });
    expect(await store.read('dev-1', 'job-b')).toBeUndefined();
    expect(await store.get('job-none')).toBeUndefined();
  });

  it('updates under the ETag: concurrent increments all land, undefined leaves the record alone', async () => {
    await store.create(readJob('job-c', 'dev-3', 0));
    await Promise.all(
      Array.from({ length: 5 }, () =>
        store.update('dev-3', 'job-c', (job) => ({ ...job, attempts: job.attempts + 1 })),
      ),
    );
    expect((await store.read('dev-3', 'job-c'))?.attempts).toBe(5);
    const unchanged = await store.update('dev-3', 'job-c', () => undefined);
    expect(unchanged?.attempts).toBe(5);
    expect(await store.update('dev-3', 'job-none', (job) => job)).toBeUndefined();
  });

  it("lists a device's jobs newest first over pages, and no other device's", async () => {
    for (let i = 0; i < 7; i++) await store.create(readJob(`list-${i}`, 'dev-list', i * 1000));
    await store.create(readJob('list-other', 'dev-other', 99_000));
    const seen: string[] = [];
    let continuation: string | undefined;
    let pages = 0;
    do {
      const page = await store.listByDevice('dev-list', 3, continuation);
      seen.push(...page.jobs.map((job) => job.id));
      continuation = page.continuation;
      pages++;
    } while (continuation);
    expect(pages).toBeGreaterThanOrEqual(3);
    expect(seen).toEqual([6, 5, 4, 3, 2, 1, 0].map((i) => `list-${i}`));
  });

  it('finds queued jobs without sentTime created at or before a time, across devices, and no others', async () => {
    const unsent = (id: string, deviceId: string, createdMs: number) => store.create(readJob(id, deviceId, createdMs));
    await unsent('u-old-1', 'dev-u1', 10_000);
    await unsent('u-old-2', 'dev-u2', 20_000);
    await unsent('u-new', 'dev-u1', 90_000);
    await store.create({ ...readJob('u-sent', 'dev-u1', 10_000), sentTime: at(10_001) });
    await store.create({ ...readJob('u-running', 'dev-u2', 10_000), status: 'running' });
    await store.create({ ...readJob('u-cancelled', 'dev-u2', 10_000), status: 'cancelled' });
    const seen: string[] = [];
    let continuation: string | undefined;
    do {
      const page = await store.findUnsent(at(20_000), 1, continuation);
      seen.push(...page.jobs.map((job) => job.id).filter((id) => id.startsWith('u-')));
      continuation = page.continuation;
    } while (continuation);
    expect(seen.sort()).toEqual(['u-old-1', 'u-old-2']);
  });
});
