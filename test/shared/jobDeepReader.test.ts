import { JobDocument, JobRequest, newJob } from '../../shared/job';
import { FIRST_POLL_MS, JobDeepReader, MAX_POLL_MS } from '../../shared/jobDeepReader';
import { JobPage, JobStore } from '../../shared/jobStore';

const NOW = '2026-01-01T00:00:00.000Z';

/** A job store holding one job whose record moves through `script` as time passes (ms since submission). */
class ScriptedJobs implements JobStore {
  reads = 0;
  constructor(
    private readonly clock: { ms: number },
    private readonly script: { afterMs: number; change: Partial<JobDocument> }[],
    public job?: JobDocument,
  ) {}

  async read(_deviceId: string, jobId: string): Promise<JobDocument | undefined> {
    this.reads++;
    if (!this.job || this.job.id !== jobId) return undefined;
    const changes = this.script.filter((step) => step.afterMs <= this.clock.ms).map((step) => step.change);
    return Object.assign({}, this.job, ...changes) as JobDocument;
  }
  async get(jobId: string): Promise<JobDocument | undefined> {
    return this.read('', jobId);
  }
  async create(job: JobDocument): Promise<{ job: JobDocument; created: boolean }> {
    this.job = job;
    return { job, created: true };
  }
  async update(): Promise<JobDocument | undefined> {
    throw new Error('not used');
  }
  async listByDevice(): Promise<JobPage> {
    return { jobs: [] };
  }
  async findUnsent(): Promise<JobPage> {
    return { jobs: [] };
  }
  async listWaiting(): Promise<JobDocument[]> {
    return [];
  }
  async findExpiredWaiting(): Promise<JobPage> {
    return { jobs: [] };
  }
}

function setUp(script: { afterMs: number; change: Partial<JobDocument> }[]) {
  const clock = { ms: 0 };
  const jobs = new ScriptedJobs(clock, script);
  const submitted: JobRequest[] = [];
  const pauses: number[] = [];
  const reader = new JobDeepReader({
    submit: async (request) => {
      submitted.push(request);
      return (await jobs.create(newJob('job-1', request, 'api', NOW, 3600))).job;
    },
    jobs,
    elapsedClock: () => clock.ms,
    sleep: async (ms) => {
      pauses.push(ms);
      clock.ms += ms;
    },
  });
  return { reader, jobs, submitted, pauses };
}

describe('JobDeepReader (injected clock)', () => {
  it('submits a readDeviceProperty job and answers with its result once it completes', async () => {
    const { reader, submitted, pauses } = setUp([
      { afterMs: 30, change: { status: 'running' } },
      { afterMs: 400, change: { status: 'completed', result: { value: 42, lastUpdatedTime: NOW } } },
    ]);
    const outcome = await reader.readProperty('dev-1', 'batteryLevel', 5000);
    expect(submitted).toEqual([{ type: 'readDeviceProperty', deviceId: 'dev-1', property: 'batteryLevel' }]);
    expect(outcome).toEqual({ status: 'completed', value: 42, lastUpdatedTime: NOW });
    expect(pauses[0]).toBe(FIRST_POLL_MS);
    expect(Math.max(...pauses)).toBeLessThanOrEqual(MAX_POLL_MS);
    expect(pauses.reduce((sum, ms) => sum + ms, 0)).toBeLessThan(400 + MAX_POLL_MS);
  });

  it("passes a failed job's code on", async () => {
    const { reader } = setUp([
      { afterMs: 100, change: { status: 'failed', error: { code: 'DeviceRejected', message: '4.05' } } },
    ]);
    expect(await reader.readProperty('dev-1', 'batteryLevel', 5000)).toEqual({
      status: 'failed',
      code: 'DeviceRejected',
      message: '4.05',
    });
  });

  it('gives up exactly at the bound while the job is still running', async () => {
    const { reader, pauses } = setUp([{ afterMs: 10, change: { status: 'running' } }]);
    expect(await reader.readProperty('dev-1', 'batteryLevel', 1000)).toEqual({ status: 'timedOut' });
    expect(pauses.reduce((sum, ms) => sum + ms, 0)).toBe(1000);
  });
});
