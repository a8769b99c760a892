import type { BlockBlobClient, ContainerClient } from '@azure/storage-blob';
import { statusOf } from './blobLeaseLock';
import type { ScheduleStatus, ScheduleStatusStore } from './timerTrigger';

/** The runtime's status document: `{"Last": ..., "Next": ..., "LastUpdated": ...}`. */
interface StoredScheduleStatus {
  Last?: unknown;
  Next?: unknown;
  LastUpdated?: unknown;
}

/**
 * A timer's schedule status in one blob, as the Functions runtime's schedule monitor keeps it
 * (container `azure-webjobs-hosts`, blob `timers/<hostId>/<function>/status`). A missing or unreadable document
 * reads as no status.
 */
export class BlobScheduleStatusStore implements ScheduleStatusStore {
  readonly #blob: BlockBlobClient;

  constructor(
    private readonly container: ContainerClient,
    readonly blobName: string,
  ) {
    this.#blob = container.getBlockBlobClient(blobName);
  }

  async read(): Promise<ScheduleStatus | undefined> {
    let text: string;
    try {
      text = (await this.#blob.downloadToBuffer()).toString('utf8');
    } catch (error) {
      if (statusOf(error) === 404) {
        return undefined;
      }
      throw error;
    }
    let stored: StoredScheduleStatus;
    try {
      stored = JSON.parse(text) as StoredScheduleStatus;
    } catch {
      return undefined;
    }
    const { Last, Next, LastUpdated } = stored ?? {};
    if ([Last, Next, LastUpdated].some((value) => typeof value !== 'string' || Number.isNaN(Date.parse(value)))) {
      return undefined;
    }
    return { last: String(Last), next: String(Next), lastUpdated: String(LastUpdated) };
  }

  async write(status: ScheduleStatus): Promise<void> {
    const body = JSON.stringify({ Last: status.last, Next: status.next, LastUpdated: status.lastUpdated });
    const upload = (): Promise<unknown> =>
      this.#blob.upload(body, Buffer.byteLength(body), { blobHTTPHeaders: { blobContentType: 'application/json' } });
    try {
      await upload();
    } catch (error) {
      if (statusOf(error) !== 404) {
        throw error;
      }
      await this.container.createIfNotExists();
      await upload();
    }
  }
}
