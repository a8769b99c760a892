/**
 * The LwM2M registration interface (Core §6.2) on request objects: Register, Update, De-register, lifetime expiry,
 * and the ends the connector decides itself (deprovisioned, orphaned). It keeps the in-memory registry, writes every
 * change through to the durable `RegistrationStore`, and tells its `RegistrationListener` what happened; it knows
 * nothing of twins, observations or sockets.
 *
 * Store writes run one after another per endpoint, in the order of the changes, and never fail a request: a failed
 * write is logged (the registration works; only its durability across a restart is lost until the next change).
 */
import { randomBytes } from 'node:crypto';
import { Logger } from '../logger';
import { RegistrationLinks } from '../lwm2m/linkFormat';
import { serverInstanceCandidates } from '../lwm2m/resourcePath';
import { Authorization } from './provisioningGate';
import { DeviceAddress, Registration, TransportName, addressKey } from './registration';
import { RegistrationRegistry } from './registrationRegistry';
import { RegistrationStore } from './registrationStore';

export interface RegisterRequest {
  endpoint: string;
  /** Seconds. */
  lifetime: number;
  binding: string;
  lwm2mVersion: string;
  links: RegistrationLinks;
  transport: TransportName;
  source: DeviceAddress;
  /** The PSK identity of the DTLS session it came over (`coaps`). */
  identity?: string;
}

export interface UpdateRequest {
  registrationId: string;
  lifetime?: number;
  binding?: string;
  /** A new object list, when the Update carried one. */
  links?: RegistrationLinks;
  transport: TransportName;
  source: DeviceAddress;
  identity?: string;
}

export interface DeregisterRequest {
  registrationId: string;
  transport: TransportName;
  source: DeviceAddress;
  identity?: string;
}

export type RegistrationResponse =
  | { kind: 'created'; registrationId: string }
  | { kind: 'changed' }
  | { kind: 'deleted' }
  | { kind: 'forbidden'; detail: string }
  | { kind: 'notFound'; detail: string }
  | { kind: 'tooManyRequests'; detail: string; retryAfterSeconds: number };

/**
 * Why a registration ended: the device said so, its lifetime ran out (`expired`, also for one found expired when the
 * connector started), a new Register of the same endpoint replaced it, the device was deprovisioned, or its twin no
 * longer belongs to it (`orphaned`: deprovisioned and provisioned again while this instance was not told).
 */
export type EndCause = 'deregistered' | 'expired' | 'replaced' | 'deprovisioned' | 'orphaned';

export interface RegistrationListener {
  registered(registration: Registration): void;
  /** A registration loaded from the store at start, still within its lifetime. */
  restored(registration: Registration): void;
  /** `previousAddress`: where the device was before, when this Update came from a new address. */
  updated(
    registration: Registration,
    change: { addressChanged: boolean; objectsChanged: boolean; previousAddress?: DeviceAddress },
  ): void;
  /** The registration is no longer held; `at` is when it ended (its expiry time for an expiry), ms. */
  ended(registration: Registration, cause: EndCause, at: number): void;
}

export interface RegistrationHandlerOptions {
  registry: RegistrationRegistry;
  store: RegistrationStore;
  /**
   * May this Register's endpoint register, from its source, over its transport, with its DTLS identity?
   * (`known`: the endpoint holds a registration here already.)
   */
  authorize: (request: RegisterRequest, known: boolean) => Promise<Authorization>;
  listener: RegistrationListener;
  connectorId: string;
  log: Logger;
  now: () => number;
}

export class RegistrationHandler {
  private readonly writes = new Map<string, Promise<void>>();

  constructor(private readonly options: RegistrationHandlerOptions) {}

  async register(request: RegisterRequest): Promise<RegistrationResponse> {
    const known = this.options.registry.forEndpoint(request.endpoint) !== undefined;
    const authorization = await this.options.authorize(request, known);
    if (!authorization.ok) {
      if (authorization.reason === 'tooManyRequests') {
        return {
          kind: 'tooManyRequests',
          detail: authorization.detail,
          retryAfterSeconds: authorization.retryAfterSeconds,
        };
      }
      return { kind: 'forbidden', detail: authorization.detail };
    }
    const previous = this.options.registry.forEndpoint(request.endpoint);
    if (previous) this.end(previous, 'replaced');
    const now = this.options.now();
    const registration: Registration = {
      id: randomBytes(8).toString('base64url'),
      endpoint: request.endpoint,
      transport: request.transport,
      ...(request.identity !== undefined && { identity: request.identity }),
      address: request.source,
      lifetime: request.lifetime,
      binding: request.binding,
      lwm2mVersion: request.lwm2mVersion,
      rootPath: request.links.rootPath,
      objects: request.links.objects,
      ...linkDetails(request.links),
      registeredAt: now,
      updatedAt: now,
      expiresAt: now + request.lifetime * 1000,
      connectorId: this.options.connectorId,
      observations: {},
    };
    this.options.registry.add(registration);
    this.save(registration);
    this.options.log.info('device registered', {
      endpoint: registration.endpoint,
      registrationId: registration.id,
      peer: addressKey(request.source),
      lifetime: registration.lifetime,
      lwm2mVersion: registration.lwm2mVersion,
      replaced: previous?.id,
    });
    this.options.listener.registered(registration);
    return { kind: 'created', registrationId: registration.id };
  }

  update(request: UpdateRequest): RegistrationResponse {
    const registration = this.held(request.registrationId, request.transport);
    if (!registration) return { kind: 'notFound', detail: `no registration ${request.registrationId}` };
    if (!ownedBy(registration, request.identity)) return notOwner(request.registrationId);
    const now = this.options.now();
    // NAT rebinding or a new address: requests follow the client to where its Update came from.
    const previousAddress = registration.address;
    const addressChanged = addressKey(request.source) !== addressKey(previousAddress);
    if (addressChanged) this.options.registry.move(registration, request.source);
    if (request.lifetime !== undefined) registration.lifetime = request.lifetime;
    if (request.binding !== undefined) registration.binding = request.binding;
    if (request.links) {
      registration.objects = request.links.objects;
      registration.rootPath = request.links.rootPath;
      const { contentFormats, serverInstanceId } = linkDetails(request.links);
      registration.contentFormats = contentFormats;
      const candidates = serverInstanceCandidates(request.links.objects);
      // A known instance stays while the device still announces it (it may have been chosen among several).
      if (serverInstanceId !== undefined || !candidates.includes(registration.serverInstanceId ?? -1)) {
        registration.serverInstanceId = serverInstanceId;
      }
    }
    registration.updatedAt = now;
    this.options.registry.renew(registration, now + registration.lifetime * 1000);
    this.save(registration);
    this.options.listener.updated(registration, {
      addressChanged,
      objectsChanged: request.links !== undefined,
      ...(addressChanged && { previousAddress }),
    });
    return { kind: 'changed' };
  }

  deregister(request: DeregisterRequest): RegistrationResponse {
    const registration = this.held(request.registrationId, request.transport);
    if (!registration) return { kind: 'notFound', detail: `no registration ${request.registrationId}` };
    if (!ownedBy(registration, request.identity)) return notOwner(request.registrationId);
    this.end(registration, 'deregistered');
    this.options.log.info('device deregistered', { endpoint: registration.endpoint, peer: addressKey(request.source) });
    return { kind: 'deleted' };
  }

  /** Ends the registrations whose lifetime ran out. */
  sweepExpired(): void {
    for (const registration of this.options.registry.takeExpired(this.options.now())) {
      this.options.log.info('registration expired', {
        endpoint: registration.endpoint,
        registrationId: registration.id,
        lifetime: registration.lifetime,
      });
      this.ended(registration, 'expired', registration.expiresAt);
    }
  }

  /**
   * Ends the endpoint's registration for a reason of the connector's own (deprovisioned, orphaned). With
   * `registrationId`, only while that is still the endpoint's registration. Returns whether one ended.
   */
  endEndpoint(endpoint: string, cause: EndCause, registrationId?: string): boolean {
    const registration = this.options.registry.forEndpoint(endpoint);
    if (!registration || (registrationId !== undefined && registration.id !== registrationId)) return false;
    this.options.log.info('registration ended', { endpoint, registrationId: registration.id, cause });
    this.end(registration, cause);
    return true;
  }

  /**
   * Takes up this instance's registrations as loaded from the store (`RegistrationStore.loadAll`): those within their
   * lifetime are held again (the listener's `restored`), those that expired while the connector was down end as
   * `expired`. Synchronous, so a caller can restore before the endpoint delivers its first datagram. Returns how many
   * of each.
   */
  restore(loaded: readonly Registration[]): { restored: number; expired: number } {
    const now = this.options.now();
    let restored = 0;
    let expired = 0;
    for (const registration of loaded) {
      const current = this.options.registry.forEndpoint(registration.endpoint);
      if (current) continue; // The device registered again before the load finished: the newer one stands.
      if (registration.expiresAt <= now) {
        expired++;
        this.ended(registration, 'expired', registration.expiresAt);
        continue;
      }
      restored++;
      this.options.registry.add(registration);
      this.options.listener.restored(registration);
    }
    return { restored, expired };
  }

  /** Stores the registration's current state (for example after its observations changed). */
  save(registration: Registration): void {
    this.write(registration.endpoint, () =>
      this.options.registry.holds(registration) ? this.options.store.save(registration) : Promise.resolve(),
    );
  }

  /** Resolves when every store write started so far is done. */
  async settled(): Promise<void> {
    while (this.writes.size > 0) await Promise.all([...this.writes.values()]);
  }

  /** The held registration `id`, if it arrived over `transport` (a registration answers on its own transport only). */
  private held(id: string, transport: TransportName): Registration | undefined {
    const registration = this.options.registry.get(id);
    return registration?.transport === transport ? registration : undefined;
  }

  private end(registration: Registration, cause: EndCause): void {
    this.options.registry.remove(registration);
    this.ended(registration, cause, this.options.now());
  }

  private ended(registration: Registration, cause: EndCause, at: number): void {
    // A replacement's save follows in order and overwrites the record: no delete needed.
    if (cause !== 'replaced') {
      this.write(registration.endpoint, () => this.options.store.remove(registration.endpoint, registration.id));
    }
    this.options.listener.ended(registration, cause, at);
  }

  private write(endpoint: string, operation: () => Promise<void>): void {
    const previous = this.writes.get(endpoint) ?? Promise.resolve();
    const next = previous.then(operation).catch((error: unknown) => {
      this.options.log.warn('registration store write failed', {
        endpoint,
        error: error instanceof Error ? error.message : String(error),
      });
    });
    this.writes.set(endpoint, next);
    void next.then(() => {
      if (this.writes.get(endpoint) === next) this.writes.delete(endpoint);
    });
  }
}

/**
 * What a registration keeps from its links besides the objects: the announced content formats, and the Server
 * object instance when the device has exactly one (with several, the server picks its own after registering).
 */
function linkDetails(links: RegistrationLinks): { contentFormats?: number[]; serverInstanceId?: number } {
  const candidates = serverInstanceCandidates(links.objects);
  return {
    ...(links.contentFormats !== undefined && { contentFormats: [...links.contentFormats] }),
    ...(candidates.length === 1 && { serverInstanceId: candidates[0] }),
  };
}

/**
 * Whether a request's DTLS identity may act on the registration: a registration made over DTLS belongs to the PSK
 * identity that made it (whatever address or resumed session it comes from next); one made over plain CoAP has no
 * owner to check (its devices were provisioned without security).
 */
function ownedBy(registration: Registration, identity: string | undefined): boolean {
  return registration.identity === undefined || registration.identity === identity;
}

function notOwner(registrationId: string): RegistrationResponse {
  return { kind: 'forbidden', detail: `registration ${registrationId} belongs to another DTLS session` };
}
