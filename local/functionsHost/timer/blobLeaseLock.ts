import { randomUUID } from 'node:crypto';
import { RestError, type BlockBlobClient, type ContainerClient } from '@azure/storage-blob';
import type { SingletonLock } from './timerTrigger';

/** Azure Blob leases last 15 to 60 seconds (or forever, which a lock must not use). */
export const MIN_LEASE_SECONDS = 15;
export const MAX_LEASE_SECONDS = 60;

/**
 * A singleton lock held as a lease on one blob, as the Functions runtime's singleton manager does
 * (container `azure-webjobs-hosts`, blob `locks/<hostId>/<function>.Listener`). The blob is created empty on demand.
 * The lease id is fixed per instance, so re-acquiring what this instance already holds succeeds.
 */
export class BlobLeaseLock implements SingletonLock {
  readonly #blob: BlockBlobClient;
  readonly #leaseId = randomUUID();
  readonly #leaseSeconds: number;
  #blobReady = false;

  /** `leaseSeconds` is clamped to the blob service's 15-60 s. */
  constructor(
    private readonly container: ContainerClient,
    readonly blobName: string,
    leaseSeconds: number,
  ) {
    this.#blob = container.getBlockBlobClient(blobName);
    this.#leaseSeconds = Math.min(MAX_LEASE_SECONDS, Math.max(MIN_LEASE_SECONDS, Math.round(leaseSeconds)));
  }

  get leaseSeconds(): number {
    return this.#leaseSeconds;
  }

  async tryAcquire(): Promise<boolean> {
    if (!this.#blobReady) {
      await this.ensureBlob();
    }
    try {
      await this.#blob.getBlobLeaseClient(this.#leaseId).acquireLease(this.#leaseSeconds);
      return true;
    } catch (error) {
      if (statusOf(error) === 409) {
        return false;
      }
      if (statusOf(error) === 404) {
        this.#blobReady = false;
      }
      throw error;
    }
  }

  async renew(): Promise<boolean> {
    try {
      await this.#blob.getBlobLeaseClient(this.#leaseId).renewLease();
      return true;
    } catch (error) {
      const status = statusOf(error);
      if (status === 409 || status === 404 || status === 412) {
        return false;
      }
      throw error;
    }
  }

  async release(): Promise<void> {
    try {
      await this.#blob.getBlobLeaseClient(this.#leaseId).releaseLease();
    } catch (error) {
      const status = statusOf(error);
      if (status !== 409 && status !== 404 && status !== 412) {
        throw error;
      }
    }
  }

  private async ensureBlob(): Promise<void> {
    await this.container.createIfNotExists();
    try {
      await this.#blob.upload('', 0, { conditions: { ifNoneMatch: '*' } });
    } catch (error) {
      // 409: exists and is leased by another host; 412: exists. Both are what we need.
      if (statusOf(error) !== 409 && statusOf(error) !== 412) {
        throw error;
      }
    }
    this.#blobReady = true;
  }
}

export function statusOf(error: unknown): number | undefined {
  return error instanceof RestError ? error.statusCode : undefined;
}
