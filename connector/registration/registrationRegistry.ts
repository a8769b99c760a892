/**
 * The registrations this connector instance holds, in memory (the hot path's index; a `RegistrationStore` keeps
 * them durable), by registration id, by endpoint name and by address (transport and peer: who sent a Send), with
 * their expiry times in one min-heap: finding the registrations whose lifetime ran out costs O(expired * log n), with
 * no timer per device. An Update pushes a new heap entry; the superseded one is discarded when it surfaces.
 */
import { DeviceAddress, Registration, TransportName, addressKey } from './registration';

export class RegistrationRegistry {
  private readonly byId = new Map<string, Registration>();
  private readonly byEndpoint = new Map<string, Registration>();
  /** By transport, then by `addressKey` (one flat key each: no transport prefix concatenated to it). */
  private readonly byAddress: Record<TransportName, Map<string, Registration>> = { coap: new Map(), coaps: new Map() };
  /**
   * The min-heap, as two parallel arrays: entry i is `heap[i]`, due at `heapTimes[i]` (ms). No object per entry, and
   * an array of numbers stores them unboxed (memory per registration).
   */
  private readonly heap: Registration[] = [];
  private readonly heapTimes: number[] = [];
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
    return this.byAddress[transport].get(addressKey(address));
  }

  /** The device moved (an Update from a new address): requests and lookups follow it. */
  move(registration: Registration, address: DeviceAddress): void {
    this.unindexAddress(registration);
    registration.address = address;
    if (this.holds(registration)) this.byAddress[registration.transport].set(addressKey(address), registration);
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
    this.byAddress[registration.transport].set(addressKey(registration.address), registration);
    this.push(registration, registration.expiresAt);
  }

  /**
   * Records a new expiry time after an Update. The heap keeps one entry per registration, at its earliest scheduled
   * time: a later expiry (the usual case) moves nothing now, the entry is re-queued when it surfaces; so Updates in a
   * loop cannot grow the heap.
   */
  renew(registration: Registration, expiresAt: number): void {
    registration.expiresAt = expiresAt;
    const scheduled = this.scheduled.get(registration);
    if (scheduled === undefined || expiresAt < scheduled) this.push(registration, expiresAt);
  }

  remove(registration: Registration): void {
    if (this.byId.get(registration.id) === registration) this.byId.delete(registration.id);
    if (this.byEndpoint.get(registration.endpoint) === registration) this.byEndpoint.delete(registration.endpoint);
    this.unindexAddress(registration);
  }

  private unindexAddress(registration: Registration): void {
    const byAddress = this.byAddress[registration.transport];
    const key = addressKey(registration.address);
    if (byAddress.get(key) === registration) byAddress.delete(key);
  }

  /** Removes and returns the registrations whose expiry time is at or before `now`. */
  takeExpired(now: number): Registration[] {
    const expired: Registration[] = [];
    while (this.heap.length > 0 && this.heapTimes[0] <= now) {
      const registration = this.heap[0];
      const at = this.heapTimes[0];
      this.removeTop();
      if (this.scheduled.get(registration) !== at) continue; // superseded by an earlier entry
      this.scheduled.delete(registration);
      if (this.byId.get(registration.id) !== registration) continue; // ended meanwhile
      if (registration.expiresAt <= now) {
        this.remove(registration);
        expired.push(registration);
      } else {
        this.push(registration, registration.expiresAt); // renewed since: its turn comes later
      }
    }
    return expired;
  }

  private push(registration: Registration, at: number): void {
    this.scheduled.set(registration, at);
    const { heap, heapTimes } = this;
    let i = heap.length;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heapTimes[parent] <= at) break;
      heap[i] = heap[parent];
      heapTimes[i] = heapTimes[parent];
      i = parent;
    }
    heap[i] = registration;
    heapTimes[i] = at;
  }

  /** Removes the earliest entry (the heap is not empty). */
  private removeTop(): void {
    const { heap, heapTimes } = this;
    const last = heap.pop() as Registration;
    const lastAt = heapTimes.pop() as number;
    if (heap.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && heapTimes[right] < heapTimes[left] ? right : left;
      if (heapTimes[child] >= lastAt) break;
      heap[i] = heap[child];
      heapTimes[i] = heapTimes[child];
      i = child;
    }
    heap[i] = last;
    heapTimes[i] = lastAt;
  }
}
