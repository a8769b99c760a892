/**
 * The registrations this connector instance holds, in memory (the hot path's index; a `RegistrationStore` keeps
 * them durable), by registration id, by endpoint name and by address (transport and peer: who sent a Send), with
 * their expiry times in one min-heap: finding the registrations whose lifetime ran out costs O(expired * log n), with
 * no timer per device. An Update pushes a new heap entry; the superseded one is discarded when it surfaces.
 */
import { DeviceAddress, Registration, TransportName, addressKey } from './registration';

interface HeapEntry {
  at: number;
  registration: Registration;
}

export class RegistrationRegistry {
  private readonly byId = new Map<string, Registration>();
  private readonly byEndpoint = new Map<string, Registration>();
  private readonly byAddress = new Map<string, Registration>();
  private readonly heap: HeapEntry[] = [];
  /** The time of each registration's live heap entry. */
  private readonly scheduled = new WeakMap<Registration, number>();

  get size(): number {
    return this.byId.size;
  }

  get(id: string): Registration | undefined {
    return this.byId.get(id);
  }

  forEndpoint(endpoint: string): Registration | undefined {
    return this.byEndpoint.get(endpoint);
  }

  /** The registration whose device is at `address` on `transport` (its last Register or Update came from there). */
  forAddress(transport: TransportName, address: DeviceAddress): Registration | undefined {
    return this.byAddress.get(transportAddressKey(transport, address));
  }

  /** The device moved (an Update from a new address): requests and lookups follow it. */
  move(registration: Registration, address: DeviceAddress): void {
    this.unindexAddress(registration);
    registration.address = address;
    if (this.holds(registration))
      this.byAddress.set(transportAddressKey(registration.transport, address), registration);
  }

  all(): IterableIterator<Registration> {
    return this.byId.values();
  }

  /** Whether `registration` is still held (not ended, replaced or expired since it was looked up). */
  holds(registration: Registration): boolean {
    return this.byId.get(registration.id) === registration;
  }

  /** Adds a registration (the caller removed any previous one of the same endpoint). */
  add(registration: Registration): void {
    this.byId.set(registration.id, registration);
    this.byEndpoint.set(registration.endpoint, registration);
    this.byAddress.set(transportAddressKey(registration.transport, registration.address), registration);
    this.push({ at: registration.expiresAt, registration });
  }

  /**
   * Records a new expiry time after an Update. The heap keeps one entry per registration, at its earliest scheduled
   * time: a later expiry (the usual case) moves nothing now, the entry is re-queued when it surfaces; so Updates in a
   * loop cannot grow the heap.
   */
  renew(registration: Registration, expiresAt: number): void {
    registration.expiresAt = expiresAt;
    const scheduled = this.scheduled.get(registration);
    if (scheduled === undefined || expiresAt < scheduled) this.push({ at: expiresAt, registration });
  }

  remove(registration: Registration): void {
    if (this.byId.get(registration.id) === registration) this.byId.delete(registration.id);
    if (this.byEndpoint.get(registration.endpoint) === registration) this.byEndpoint.delete(registration.endpoint);
    this.unindexAddress(registration);
  }

  private unindexAddress(registration: Registration): void {
    const key = transportAddressKey(registration.transport, registration.address);
    if (this.byAddress.get(key) === registration) this.byAddress.delete(key);
  }

  /** Removes and returns the registrations whose expiry time is at or before `now`. */
  takeExpired(now: number): Registration[] {
    const expired: Registration[] = [];
    while (this.heap.length > 0 && this.heap[0].at <= now) {
      const { at, registration } = this.pop();
      if (this.scheduled.get(registration) !== at) continue; // superseded by an earlier entry
      this.scheduled.delete(registration);
      if (this.byId.get(registration.id) !== registration) continue; // ended meanwhile
      if (registration.expiresAt <= now) {
        this.remove(registration);
        expired.push(registration);
      } else {
        this.push({ at: registration.expiresAt, registration }); // renewed since: its turn comes later
      }
    }
    return expired;
  }

  private push(entry: HeapEntry): void {
    this.scheduled.set(entry.registration, entry.at);
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent].at <= entry.at) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = entry;
  }

  private pop(): HeapEntry {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop() as HeapEntry;
    if (heap.length > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= heap.length) break;
        const right = left + 1;
        const child = right < heap.length && heap[right].at < heap[left].at ? right : left;
        if (heap[child].at >= last.at) break;
        heap[i] = heap[child];
        i = child;
      }
      heap[i] = last;
    }
    return top;
  }
}

function transportAddressKey(transport: TransportName, address: DeviceAddress): string {
  return `${transport}|${addressKey(address)}`;
}
