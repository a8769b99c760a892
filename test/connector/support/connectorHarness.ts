/**
 * Starts a connector in-process on free ports against an in-process local Cosmos server, with a capturing logger,
 * a capturing event publisher and a clock the test can move. Twins are "provisioned" with newTwin + store.create.
 * (The connector's events reach the real Service Bus in test/integration/freshness.test.ts.)
 */
import { CosmosTwinStore, openTwinsContainer } from '../../../shared/cosmosTwinStore';
import { TwinDocument, newTwin } from '../../../shared/twin';
import { TwinEvent } from '../../../shared/twinEvents';
import { LogFields, Logger } from '../../../connector/logger';
import { RegistrationStore } from '../../../connector/registration/registrationStore';
import { MemoryCredentialFeed } from './memoryCredentialFeed';
import { ConnectorSettings, RunningConnector, startConnector } from '../../../connector/startConnector';
import { TestCosmos, startTestCosmos } from '../../support/localCosmos';

export interface LogLine {
  level: 'info' | 'warn' | 'error';
  message: string;
  fields?: LogFields;
}

export const TEST_API_KEY = 'test-connector-key';

export function testSettings(overrides: Partial<ConnectorSettings> = {}): ConnectorSettings {
  return {
    instanceId: 'connector-test',
    coapPort: 0,
    coapAddress: '127.0.0.1',
    apiPort: 0,
    apiAddress: '127.0.0.1',
    apiUrl: 'http://connector-test.invalid:8080',
    apiKey: TEST_API_KEY,
    deviceTimeoutSeconds: 3,
    observation: {
      device: { pmin: 1, pmax: 5 },
      server: { pmin: 2, pmax: 10 },
      firmwareUpdate: { pmin: 3, pmax: 15 },
    },
    stalenessGraceSeconds: 93,
    notifyBatchMs: 20,
    maxConcurrentTwinWrites: 8,
    expirySweepMs: 20,
    ...overrides,
  };
}

/** A clock that follows real time plus an offset the test can advance. */
export class ShiftedClock {
  offsetMs = 0;
  readonly now = () => Date.now() + this.offsetMs;
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

export class ConnectorHarness {
  readonly logs: LogLine[] = [];
  /** What the connector published, in order. */
  readonly events: TwinEvent[] = [];
  readonly clock = new ShiftedClock();
  cosmos!: TestCosmos;
  private ownsCosmos = false;
  store!: CosmosTwinStore;
  connector!: RunningConnector;
  settings!: ConnectorSettings;
  /** Queue-mode devices the connector reported awake (its `onDeviceAwake`), in order. */
  readonly awakened: string[] = [];

  /** Credentials given to the connector (`startWithCredentials`): then it serves coaps too. */
  credentials?: MemoryCredentialFeed;

  async start(
    overrides: Partial<ConnectorSettings> = {},
    database = 'connector-test',
    registrations?: RegistrationStore,
  ): Promise<this> {
    this.cosmos = await startTestCosmos();
    this.ownsCosmos = true;
    this.store = new CosmosTwinStore(await openTwinsContainer(this.cosmos.client, database), 93);
    return this.startConnector(overrides, registrations);
  }

  /** A connector that takes its devices' credentials from `credentials` (`provisionWith` adds them) and serves coaps. */
  async startWithCredentials(overrides: Partial<ConnectorSettings> = {}, database = 'connector-test'): Promise<this> {
    this.credentials = new MemoryCredentialFeed();
    return this.start({ coapsPort: 0, ...overrides }, database);
  }

  /** A second connector on `other`'s Cosmos and twins (a restart); `other` closes the Cosmos server. */
  async startOn(
    other: ConnectorHarness,
    overrides: Partial<ConnectorSettings> = {},
    registrations?: RegistrationStore,
  ): Promise<this> {
    this.cosmos = other.cosmos;
    this.store = other.store;
    return this.startConnector(overrides, registrations);
  }

  private async startConnector(
    overrides: Partial<ConnectorSettings>,
    registrations: RegistrationStore | undefined,
  ): Promise<this> {
    this.settings = testSettings(overrides);
    this.connector = await startConnector({
      store: this.store,
      registrations,
      credentials: this.credentials,
      config: this.settings,
      events: { publish: async (events) => void this.events.push(...events) },
      onDeviceAwake: (deviceId) => void this.awakened.push(deviceId),
      log: this.logger(),
      now: this.clock.now,
    });
    return this;
  }

  get server() {
    return { host: '127.0.0.1', port: this.connector.coapPort };
  }

  /** The coaps endpoint (with `startWithCredentials`). */
  get secureServer() {
    return { host: '127.0.0.1', port: this.connector.coapsPort as number };
  }

  /** Provisions a device (its twin) with credentials, as PUT /api/devices does; `version` orders rotations. */
  async provisionWith(deviceId: string, security: { identity: string; key: Buffer } | 'none', version = Date.now()) {
    await this.provision(deviceId);
    this.setCredentials(deviceId, security, version);
  }

  /** Writes a new version of a device's credentials (a rotation), or revokes them (deprovisioning). */
  setCredentials(
    deviceId: string,
    security: { identity: string; key: Buffer } | 'none' | 'revoked',
    version = Date.now(),
  ) {
    if (!this.credentials) throw new Error('start the harness with startWithCredentials');
    const base = { id: deviceId, deviceId, version, updatedTime: new Date(version).toISOString() };
    if (security === 'revoked') this.credentials.put({ ...base, mode: 'psk', revoked: true, ttl: 60 });
    else if (security === 'none') this.credentials.put({ ...base, mode: 'none', revoked: false });
    else {
      this.credentials.put({
        ...base,
        mode: 'psk',
        identity: security.identity,
        key: security.key.toString('base64'),
        revoked: false,
      });
    }
  }

  async provision(deviceId: string): Promise<void> {
    await this.store.create(newTwin(deviceId, { tags: { test: 'yes' } }, new Date(this.clock.now()).toISOString()));
  }

  twin(deviceId: string): Promise<TwinDocument | undefined> {
    return this.store.get(deviceId);
  }

  /** Polls the twin until `predicate` holds; fails with the last twin seen. */
  async waitForTwin(
    deviceId: string,
    predicate: (twin: TwinDocument) => boolean,
    timeoutMs = 5000,
  ): Promise<TwinDocument> {
    const deadline = Date.now() + timeoutMs;
    let last: TwinDocument | undefined;
    for (;;) {
      last = await this.store.get(deviceId);
      if (last && predicate(last)) return last;
      if (Date.now() > deadline) {
        throw new Error(
          `twin ${deviceId} did not reach the expected state in ${timeoutMs} ms: ${JSON.stringify(last)}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  eventsOf(deviceId: string): TwinEvent[] {
    return this.events.filter((e) => e.deviceId === deviceId);
  }

  logged(level: LogLine['level'], pattern: RegExp): LogLine[] {
    return this.logs.filter((l) => l.level === level && pattern.test(l.message));
  }

  async close(): Promise<void> {
    await this.connector?.close();
    if (this.ownsCosmos) await this.cosmos?.close();
  }

  private logger(): Logger {
    const push = (level: LogLine['level']) => (message: string, fields?: LogFields) =>
      this.logs.push({ level, message, fields });
    return { info: push('info'), warn: push('warn'), error: push('error') };
  }
}

export async function waitUntil(condition: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
