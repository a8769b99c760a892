/**
 * Where registrations are kept durably, so a restarted connector knows its devices (Leshan's RegistrationStore).
 * The connector's in-memory `RegistrationRegistry` serves every lookup; this store is written through on each
 * change and read once, at start. `CosmosRegistrationStore` is the real one; `MemoryRegistrationStore` serves unit
 * tests and a connector run without persistence.
 *
 * Contract, which callers may rely on:
 * - one record per endpoint: `save` creates or replaces the endpoint's record;
 * - `remove` deletes the endpoint's record only while it is still the given registration (a newer registration of
 *   the endpoint, saved by this or another connector instance, is left alone);
 * - a record outlives its registration's `expiresAt` by a bounded margin at most (Cosmos TTL), so stale records
 *   do not pile up when a connector instance goes away for good;
 * - the caller serialises calls per endpoint (`save` then `remove` in the order it made them).
 */
import { Registration } from './registration';

export interface RegistrationStore {
  /** Every registration recorded as held by `connectorId`, in any order. */
  loadAll(connectorId: string): Promise<Registration[]>;
  save(registration: Registration): Promise<void>;
  remove(endpoint: string, registrationId: string): Promise<void>;
}

/** Seconds a stored record outlives its registration's expiry (then Cosmos deletes it). */
export const RECORD_TTL_MARGIN_SECONDS = 3600;

/** A structured copy: what is stored never aliases the live registration the connector keeps changing. */
export function copyRegistration(registration: Registration): Registration {
  return structuredClone(registration);
}

export class MemoryRegistrationStore implements RegistrationStore {
  private readonly records = new Map<string, Registration>();

  async loadAll(connectorId: string): Promise<Registration[]> {
    return [...this.records.values()].filter((r) => r.connectorId === connectorId).map(copyRegistration);
  }

  async save(registration: Registration): Promise<void> {
    this.records.set(registration.endpoint, copyRegistration(registration));
  }

  async remove(endpoint: string, registrationId: string): Promise<void> {
    if (this.records.get(endpoint)?.id === registrationId) this.records.delete(endpoint);
  }

  get size(): number {
    return this.records.size;
  }
}
