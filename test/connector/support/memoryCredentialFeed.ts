/** Credential records handed to a connector from memory (what the Cosmos `credentials` container does in the app). */
import { CredentialRecord } from '../../../shared/deviceCredentials';
import { CredentialFeed } from '../../../connector/security/cosmosCredentialSource';

export class MemoryCredentialFeed implements CredentialFeed {
  private readonly records: CredentialRecord[] = [];
  private onRecords?: (records: CredentialRecord[]) => void;

  async start(onRecords: (records: CredentialRecord[]) => void): Promise<number> {
    this.onRecords = onRecords;
    onRecords([...this.records]);
    return this.records.length;
  }

  async stop(): Promise<void> {
    this.onRecords = undefined;
  }

  /** Stores a record and, once started, hands it over at once. */
  put(record: CredentialRecord): void {
    this.records.push(record);
    this.onRecords?.([record]);
  }
}
