/**
 * Follows the Cosmos `credentials` container for the connector: everything once at start, then, every `pollMs`,
 * the records whose `version` is newer than the newest seen minus an overlap (writers' clocks differ by a little;
 * the cache drops what it holds already). A query on the indexed `version` rather than the change feed: the local
 * Cosmos server has no incremental change feed, and one small query a second costs a few RU in Azure.
 */
import { Container } from '@azure/cosmos';
import { CredentialRecord } from '../../shared/deviceCredentials';
import { Logger } from '../logger';

/** How far back each poll looks past the newest version seen, ms (clock differences between writers). */
const OVERLAP_MS = 60_000;
const PAGE_SIZE = 1000;

/** Where the connector gets credential records from (see `startConnector`). */
export interface CredentialFeed {
  /** Hands every record to `onRecords` (resolves with their number once they are applied), then the changes. */
  start(onRecords: (records: CredentialRecord[]) => void): Promise<number>;
  stop(): Promise<void>;
}

export class CosmosCredentialSource implements CredentialFeed {
  private newest = 0;
  private timer?: NodeJS.Timeout;
  private polling?: Promise<void>;
  private onRecords: (records: CredentialRecord[]) => void = () => undefined;

  constructor(
    private readonly container: Container,
    private readonly options: { pollMs: number; log: Logger },
  ) {}

  async start(onRecords: (records: CredentialRecord[]) => void): Promise<number> {
    this.onRecords = onRecords;
    const records = await this.query({ query: 'SELECT * FROM c' });
    this.take(records);
    this.timer = setInterval(() => {
      this.polling ??= this.poll().finally(() => (this.polling = undefined));
    }, this.options.pollMs);
    this.timer.unref();
    return records.length;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.polling;
  }

  private async poll(): Promise<void> {
    try {
      const since = this.newest - OVERLAP_MS;
      this.take(
        await this.query({
          query: 'SELECT * FROM c WHERE c.version > @since',
          parameters: [{ name: '@since', value: since }],
        }),
      );
    } catch (error) {
      this.options.log.warn('credentials poll failed; retrying', {
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  private take(records: CredentialRecord[]): void {
    for (const record of records) if (record.version > this.newest) this.newest = record.version;
    if (records.length > 0) this.onRecords(records);
  }

  private async query(spec: {
    query: string;
    parameters?: { name: string; value: number }[];
  }): Promise<CredentialRecord[]> {
    const iterator = this.container.items.query<CredentialRecord>(spec, { maxItemCount: PAGE_SIZE });
    const records: CredentialRecord[] = [];
    while (iterator.hasMoreResults()) records.push(...(await iterator.fetchNext()).resources);
    return records;
  }
}
