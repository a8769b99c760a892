/**
 * One entity that receivers read from (a queue, a subscription, or the dead-letter queue of either), with Service
 * Bus semantics: peek-lock with lock expiry and renewal, abandon / defer / dead-letter, maxDeliveryCount, message
 * time to live, scheduled messages, and sessions (one receiver per session, in order, session lock and state).
 * It knows no AMQP framing: receive links are {@link MessageConsumer}s and all times come from the injected clock.
 */
import { Condition, DeadLetterProperty, DeadLetterReason, MessageState } from './amqpConstants';
import { AmqpConditionError } from './amqpConditionError';
import { type BrokeredMessage, encodeForReceiver, withApplicationProperties } from './brokeredMessage';
import type { Clock } from './clock';
import type { ReceivableEntitySettings } from './entitiesConfig';
import { newLockToken } from './lockToken';

export type ReceiveMode = 'peekLock' | 'receiveAndDelete';

/** A message handed to a receiver: the encoded AMQP message and the lock token that settles it. */
export interface MessageDelivery {
  readonly lockToken: string;
  readonly encoded: Buffer;
}

/** A receive link as the entity sees it. */
export interface MessageConsumer {
  /** Unique per link (connection and link name); owns message and session locks. */
  readonly ownerId: string;
  /** The session this consumer holds, for a session entity; undefined otherwise. */
  readonly sessionId: string | undefined;
  readonly receiveMode: ReceiveMode;
  /** How many more messages the consumer can take now (link credit). */
  availableCredit(): number;
  deliver(delivery: MessageDelivery): void;
  /** The session lock expired; the entity has already released the session and its messages. */
  sessionLockLost(): void;
}

export interface SessionGrant {
  readonly sessionId: string;
  readonly lockedUntilMs: number;
}

/** A receiver waiting for any free session (accept-next-session). */
export interface SessionWaiter {
  readonly ownerId: string;
  grant(grant: SessionGrant): void;
}

interface MessageLock {
  readonly token: string;
  readonly ownerId: string;
  /** For session messages the lock lasts as long as the session lock, and this is unused. */
  lockedUntilMs: number;
  readonly bySession: boolean;
}

interface StoredMessage {
  readonly sequenceNumber: number;
  message: BrokeredMessage;
  readonly enqueuedTimeMs: number;
  readonly expiresAtMs: number;
  readonly availableAtMs: number;
  /** Deliveries so far; the AMQP header of the next delivery carries the value before it is incremented. */
  deliveryCount: number;
  state: 'active' | 'deferred';
  lock?: MessageLock;
}

interface SessionRecord {
  readonly id: string;
  state?: Buffer;
  lock?: { readonly ownerId: string; lockedUntilMs: number };
  /** Sequence numbers of this session's messages, ascending. */
  readonly sequenceNumbers: Set<number>;
}

/** What a dead-lettered or expired message carries over from its first entity. */
interface CarriedOver {
  readonly enqueuedTimeMs: number;
  readonly deliveryCount: number;
}

export class MessageEntity {
  private readonly messages = new Map<number, StoredMessage>();
  private readonly locks = new Map<string, StoredMessage>();
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly scheduled = new Set<StoredMessage>();
  private readonly consumers: MessageConsumer[] = [];
  private readonly sessionWaiters: SessionWaiter[] = [];
  private nextSequenceNumber = 1;
  private deadline: { atMs: number; cancel(): void } | undefined;
  private dispatching = false;
  private dispatchAgain = false;
  private expiring = false;

  /**
   * @param path - the entity's address, for messages.
   * @param deadLetterQueue - where dead-lettered messages go; undefined for a dead-letter queue itself.
   */
  constructor(
    readonly path: string,
    readonly settings: ReceivableEntitySettings,
    private readonly clock: Clock,
    private readonly deadLetterQueue?: MessageEntity,
  ) {}

  get requiresSession(): boolean {
    return this.settings.requiresSession;
  }

  /** Throws the error a sender gets when this entity cannot take `message`. */
  checkAcceptable(message: BrokeredMessage): void {
    if (this.settings.requiresSession && message.sessionId === undefined) {
      throw new AmqpConditionError(
        Condition.notAllowed,
        `The SessionId was not set on a message, and it cannot be sent to the entity '${this.path}'. ` +
          'Entities that have session support enabled can only receive messages that have the SessionId set.',
      );
    }
  }

  /** Stores a message and offers it to waiting receivers; returns its sequence number. */
  enqueue(message: BrokeredMessage, carriedOver?: CarriedOver): number {
    const now = this.clock.now();
    const enqueuedTimeMs = carriedOver?.enqueuedTimeMs ?? now;
    const timeToLiveMs = carriedOver
      ? Infinity
      : Math.min(message.timeToLiveMs ?? Infinity, this.settings.defaultMessageTimeToLiveMs);
    const stored: StoredMessage = {
      sequenceNumber: this.nextSequenceNumber++,
      message,
      enqueuedTimeMs,
      expiresAtMs: enqueuedTimeMs + timeToLiveMs,
      availableAtMs: carriedOver ? 0 : (message.scheduledEnqueueTimeMs ?? 0),
      deliveryCount: carriedOver?.deliveryCount ?? 0,
      state: 'active',
    };
    this.messages.set(stored.sequenceNumber, stored);
    if (this.settings.requiresSession && message.sessionId !== undefined) {
      this.sessionRecord(message.sessionId).sequenceNumbers.add(stored.sequenceNumber);
    }
    if (stored.availableAtMs > now) {
      this.scheduled.add(stored);
      this.armDeadline(stored.availableAtMs);
    }
    this.dispatch();
    return stored.sequenceNumber;
  }

  addConsumer(consumer: MessageConsumer): void {
    this.consumers.push(consumer);
    this.dispatch();
  }

  /** Stops delivering to `consumer`; a session consumer's session is released and its unsettled messages return. */
  removeConsumer(consumer: MessageConsumer): void {
    const index = this.consumers.indexOf(consumer);
    if (index >= 0) this.consumers.splice(index, 1);
    if (consumer.sessionId !== undefined) {
      this.releaseSession(consumer.sessionId, consumer.ownerId);
      this.dispatch();
    }
  }

  /** Hands available messages to consumers with credit, one each in turn; grants free sessions to waiters. */
  dispatch(): void {
    if (this.dispatching) {
      this.dispatchAgain = true;
      return;
    }
    this.dispatching = true;
    try {
      do {
        this.dispatchAgain = false;
        this.expireDue();
        this.grantWaitingSessions();
        let delivered: boolean;
        do {
          delivered = false;
          for (const consumer of [...this.consumers]) {
            if (consumer.availableCredit() <= 0) continue;
            const next = this.nextAvailableFor(consumer);
            if (!next) continue;
            this.deliverTo(consumer, next);
            delivered = true;
          }
        } while (delivered);
      } while (this.dispatchAgain);
    } finally {
      this.dispatching = false;
    }
  }

  /**
   * Locks a session for `ownerId`: the named one (even if it has no messages yet), or, with `sessionId` undefined,
   * the first unlocked session that has a message to deliver. Returns undefined when no session is free.
   * Throws `session-cannot-be-locked` when the named session is held by another receiver.
   */
  acceptSession(ownerId: string, sessionId: string | undefined): SessionGrant | undefined {
    this.expireDue();
    if (sessionId !== undefined) {
      const session = this.sessionRecord(sessionId);
      if (session.lock && session.lock.ownerId !== ownerId) {
        throw new AmqpConditionError(
          Condition.sessionCannotBeLocked,
          `The requested session '${sessionId}' cannot be accepted. It may be locked by another receiver.`,
        );
      }
      return this.lockSession(session, ownerId);
    }
    const free = this.findFreeSession();
    return free ? this.lockSession(free, ownerId) : undefined;
  }

  /** Registers a receiver waiting for a free session; returns a function that withdraws it. */
  waitForSession(waiter: SessionWaiter): () => void {
    this.sessionWaiters.push(waiter);
    this.dispatch();
    return () => {
      const index = this.sessionWaiters.indexOf(waiter);
      if (index >= 0) this.sessionWaiters.splice(index, 1);
    };
  }

  /** Extends the session lock by the lock duration; returns the new expiry (epoch ms). */
  renewSessionLock(sessionId: string, ownerId: string | undefined): number {
    const session = this.lockedSession(sessionId, ownerId);
    session.lock!.lockedUntilMs = this.clock.now() + this.settings.lockDurationMs;
    this.armDeadline(session.lock!.lockedUntilMs);
    return session.lock!.lockedUntilMs;
  }

  getSessionState(sessionId: string, ownerId: string | undefined): Buffer | undefined {
    return this.lockedSession(sessionId, ownerId).state;
  }

  /** Sets (or, with undefined, clears) the state of a session held by the caller. */
  setSessionState(sessionId: string, ownerId: string | undefined, state: Buffer | undefined): void {
    this.lockedSession(sessionId, ownerId).state = state;
  }

  complete(lockToken: string): void {
    this.removeMessage(this.lockedMessage(lockToken));
  }

  /** Makes the message available again (deferred ones stay deferred); dead-letters it past maxDeliveryCount. */
  abandon(lockToken: string, propertiesToModify?: Record<string, unknown>): void {
    const stored = this.lockedMessage(lockToken);
    this.modify(stored, propertiesToModify);
    this.unlock(stored);
    if (stored.state === 'active') this.afterFailedDelivery(stored);
    this.dispatch();
  }

  /** Sets the message aside: only receive-by-sequence-number (and peek) reach it from now on. */
  defer(lockToken: string, propertiesToModify?: Record<string, unknown>): void {
    const stored = this.lockedMessage(lockToken);
    this.modify(stored, propertiesToModify);
    this.unlock(stored);
    stored.state = 'deferred';
  }

  deadLetter(
    lockToken: string,
    reason: string | undefined,
    description: string | undefined,
    propertiesToModify?: Record<string, unknown>,
  ): void {
    const stored = this.lockedMessage(lockToken);
    if (!this.deadLetterQueue) {
      throw new AmqpConditionError(
        Condition.notAllowed,
        `'${this.path}' is a dead-letter queue: cannot dead-letter from it`,
      );
    }
    this.moveToDeadLetterQueue(stored, reason, description, propertiesToModify);
  }

  /** Extends a (non-session) message lock by the lock duration; returns the new expiry (epoch ms). */
  renewLock(lockToken: string): number {
    const stored = this.lockedMessage(lockToken);
    const lock = stored.lock!;
    if (lock.bySession) {
      throw new AmqpConditionError(
        Condition.notAllowed,
        'The lock of a message in a session is the session lock: renew the session lock instead.',
      );
    }
    lock.lockedUntilMs = this.clock.now() + this.settings.lockDurationMs;
    this.armDeadline(lock.lockedUntilMs);
    return lock.lockedUntilMs;
  }

  /**
   * Receives deferred messages by sequence number (locked, or removed in receive-and-delete mode). For a session
   * entity the messages must belong to `sessionId`, which the caller must hold. Throws `message-not-found` naming
   * the first sequence number that is not a deferred message.
   */
  receiveDeferred(
    sequenceNumbers: readonly number[],
    ownerId: string,
    receiveMode: ReceiveMode,
    sessionId: string | undefined,
  ): MessageDelivery[] {
    this.expireDue();
    if (this.settings.requiresSession) {
      if (sessionId === undefined) {
        throw new AmqpConditionError(Condition.argumentError, `'${this.path}' requires a session id`);
      }
      this.lockedSession(sessionId, undefined);
    }
    const found = sequenceNumbers.map((sequenceNumber) => {
      const stored = this.messages.get(sequenceNumber);
      if (
        !stored ||
        stored.state !== 'deferred' ||
        stored.lock ||
        (sessionId !== undefined && stored.message.sessionId !== sessionId)
      ) {
        throw new AmqpConditionError(
          Condition.messageNotFound,
          `No deferred message with sequence number ${sequenceNumber} is available in '${this.path}'.`,
        );
      }
      return stored;
    });
    return found.map((stored) => this.handOut(stored, ownerId, receiveMode, this.settings.requiresSession));
  }

  /**
   * Up to `maxCount` messages from `fromSequenceNumber` on, in order, without locking them: active, deferred and
   * scheduled ones, locked or not. With `sessionId`, only that session's messages.
   */
  peek(fromSequenceNumber: number, maxCount: number, sessionId?: string): Buffer[] {
    this.expireDue();
    const now = this.clock.now();
    const peeked: Buffer[] = [];
    for (const stored of this.messages.values()) {
      if (peeked.length >= maxCount) break;
      if (stored.sequenceNumber < fromSequenceNumber) continue;
      if (sessionId !== undefined && stored.message.sessionId !== sessionId) continue;
      if (this.expireIfDue(stored, now)) continue;
      const state =
        stored.state === 'deferred'
          ? MessageState.deferred
          : stored.availableAtMs > now
            ? MessageState.scheduled
            : MessageState.active;
      peeked.push(
        encodeForReceiver(stored.message, {
          deliveryCount: stored.deliveryCount,
          sequenceNumber: stored.sequenceNumber,
          enqueuedTimeMs: stored.enqueuedTimeMs,
          lockedUntilMs: stored.lock ? this.lockedUntilOf(stored.lock, stored) : undefined,
          messageState: state,
        }),
      );
    }
    return peeked;
  }

  /** Number of messages held (any state), for tests and logs. */
  get messageCount(): number {
    return this.messages.size;
  }

  /** Cancels the entity's timer. The entity must not be used afterwards. */
  dispose(): void {
    this.deadline?.cancel();
    this.deadline = undefined;
    this.sessionWaiters.length = 0;
    this.consumers.length = 0;
  }

  private sessionRecord(sessionId: string): SessionRecord {
    let session = this.sessions.get(sessionId);
    if (!session) {
      session = { id: sessionId, sequenceNumbers: new Set() };
      this.sessions.set(sessionId, session);
    }
    return session;
  }

  private forgetSessionIfIdle(session: SessionRecord): void {
    if (!session.lock && session.state === undefined && session.sequenceNumbers.size === 0) {
      this.sessions.delete(session.id);
    }
  }

  private lockSession(session: SessionRecord, ownerId: string): SessionGrant {
    const lockedUntilMs = this.clock.now() + this.settings.lockDurationMs;
    session.lock = { ownerId, lockedUntilMs };
    this.armDeadline(lockedUntilMs);
    return { sessionId: session.id, lockedUntilMs };
  }

  /** The session, if locked (by `ownerId` when given); otherwise throws `session-lock-lost`. */
  private lockedSession(sessionId: string, ownerId: string | undefined): SessionRecord {
    this.expireDue();
    const session = this.sessions.get(sessionId);
    if (!session?.lock || (ownerId !== undefined && session.lock.ownerId !== ownerId)) {
      throw new AmqpConditionError(
        Condition.sessionLockLost,
        `The session lock for session '${sessionId}' in '${this.path}' is not held by this receiver (it expired or ` +
          'was never accepted).',
      );
    }
    return session;
  }

  private releaseSession(sessionId: string, ownerId: string): void {
    const session = this.sessions.get(sessionId);
    if (!session || session.lock?.ownerId !== ownerId) return;
    session.lock = undefined;
    for (const sequenceNumber of [...session.sequenceNumbers]) {
      const stored = this.messages.get(sequenceNumber);
      if (stored?.lock?.ownerId === ownerId) {
        this.unlock(stored);
        if (stored.state === 'active') this.afterFailedDelivery(stored);
      }
    }
    this.forgetSessionIfIdle(session);
  }

  private findFreeSession(): SessionRecord | undefined {
    const now = this.clock.now();
    for (const session of this.sessions.values()) {
      if (session.lock) continue;
      for (const sequenceNumber of session.sequenceNumbers) {
        const stored = this.messages.get(sequenceNumber)!;
        if (!this.expireIfDue(stored, now) && this.isAvailable(stored, now)) return session;
      }
    }
    return undefined;
  }

  private grantWaitingSessions(): void {
    while (this.sessionWaiters.length > 0) {
      const session = this.findFreeSession();
      if (!session) return;
      const waiter = this.sessionWaiters.shift()!;
      waiter.grant(this.lockSession(session, waiter.ownerId));
    }
  }

  private isAvailable(stored: StoredMessage, now: number): boolean {
    return stored.state === 'active' && !stored.lock && stored.availableAtMs <= now;
  }

  private nextAvailableFor(consumer: MessageConsumer): StoredMessage | undefined {
    const now = this.clock.now();
    if (consumer.sessionId !== undefined) {
      const session = this.sessions.get(consumer.sessionId);
      if (!session || session.lock?.ownerId !== consumer.ownerId) return undefined;
      for (const sequenceNumber of session.sequenceNumbers) {
        const stored = this.messages.get(sequenceNumber)!;
        if (!this.expireIfDue(stored, now) && this.isAvailable(stored, now)) return stored;
      }
      return undefined;
    }
    for (const stored of this.messages.values()) {
      if (!this.expireIfDue(stored, now) && this.isAvailable(stored, now)) return stored;
    }
    return undefined;
  }

  private deliverTo(consumer: MessageConsumer, stored: StoredMessage): void {
    consumer.deliver(this.handOut(stored, consumer.ownerId, consumer.receiveMode, consumer.sessionId !== undefined));
  }

  /** Locks (peek-lock) or removes (receive-and-delete) a message and encodes the copy that goes out. */
  private handOut(
    stored: StoredMessage,
    ownerId: string,
    receiveMode: ReceiveMode,
    bySession: boolean,
  ): MessageDelivery {
    const priorDeliveries = stored.deliveryCount;
    stored.deliveryCount += 1;
    const lockToken = newLockToken();
    const fields = {
      deliveryCount: priorDeliveries,
      sequenceNumber: stored.sequenceNumber,
      enqueuedTimeMs: stored.enqueuedTimeMs,
      messageState: stored.state === 'deferred' ? MessageState.deferred : MessageState.active,
    };
    if (receiveMode === 'receiveAndDelete') {
      this.removeMessage(stored);
      return { lockToken, encoded: encodeForReceiver(stored.message, fields) };
    }
    const lock: MessageLock = {
      token: lockToken,
      ownerId,
      lockedUntilMs: this.clock.now() + this.settings.lockDurationMs,
      bySession,
    };
    stored.lock = lock;
    this.locks.set(lockToken, stored);
    if (!bySession) this.armDeadline(lock.lockedUntilMs);
    return {
      lockToken,
      encoded: encodeForReceiver(stored.message, { ...fields, lockedUntilMs: this.lockedUntilOf(lock, stored) }),
    };
  }

  private lockedUntilOf(lock: MessageLock, stored: StoredMessage): number {
    if (!lock.bySession) return lock.lockedUntilMs;
    const session = stored.message.sessionId === undefined ? undefined : this.sessions.get(stored.message.sessionId);
    return session?.lock?.lockedUntilMs ?? lock.lockedUntilMs;
  }

  /** The message locked under `lockToken`; throws the lock-lost error the service gives otherwise. */
  private lockedMessage(lockToken: string): StoredMessage {
    this.expireDue();
    const stored = this.locks.get(lockToken);
    if (!stored) {
      throw this.settings.requiresSession
        ? new AmqpConditionError(
            Condition.sessionLockLost,
            `The lock ${lockToken} is not valid in '${this.path}': the session lock was lost or the message was ` +
              'already settled.',
          )
        : new AmqpConditionError(
            Condition.messageLockLost,
            `The lock ${lockToken} is not valid in '${this.path}': the lock expired or the message was already settled.`,
          );
    }
    return stored;
  }

  private unlock(stored: StoredMessage): void {
    if (stored.lock) this.locks.delete(stored.lock.token);
    stored.lock = undefined;
  }

  private modify(stored: StoredMessage, propertiesToModify: Record<string, unknown> | undefined): void {
    if (propertiesToModify && Object.keys(propertiesToModify).length > 0) {
      stored.message = withApplicationProperties(stored.message, propertiesToModify);
    }
  }

  private removeMessage(stored: StoredMessage): void {
    this.unlock(stored);
    this.messages.delete(stored.sequenceNumber);
    this.scheduled.delete(stored);
    const sessionId = stored.message.sessionId;
    const session = sessionId === undefined ? undefined : this.sessions.get(sessionId);
    if (session) {
      session.sequenceNumbers.delete(stored.sequenceNumber);
      this.forgetSessionIfIdle(session);
    }
  }

  /** After an abandon or a lost lock: past maxDeliveryCount the message goes to the dead-letter queue. */
  private afterFailedDelivery(stored: StoredMessage): void {
    if (this.deadLetterQueue && stored.deliveryCount >= this.settings.maxDeliveryCount) {
      this.moveToDeadLetterQueue(
        stored,
        DeadLetterReason.maxDeliveryCountExceeded,
        `Message could not be consumed after ${this.settings.maxDeliveryCount} delivery attempts.`,
      );
    }
  }

  private moveToDeadLetterQueue(
    stored: StoredMessage,
    reason: string | undefined,
    description: string | undefined,
    propertiesToModify?: Record<string, unknown>,
  ): void {
    this.removeMessage(stored);
    const deadLettered = withApplicationProperties(stored.message, {
      ...propertiesToModify,
      [DeadLetterProperty.reason]: reason,
      [DeadLetterProperty.description]: description,
    });
    this.deadLetterQueue!.enqueue(deadLettered, {
      enqueuedTimeMs: stored.enqueuedTimeMs,
      deliveryCount: stored.deliveryCount,
    });
  }

  /** Removes (or dead-letters) an unlocked message whose time to live has passed; returns true if it did. */
  private expireIfDue(stored: StoredMessage, now: number): boolean {
    if (stored.lock || stored.expiresAtMs > now) return false;
    if (this.deadLetterQueue && this.settings.deadLetteringOnMessageExpiration) {
      this.moveToDeadLetterQueue(
        stored,
        DeadLetterReason.timeToLiveExpired,
        'The message expired and was dead lettered.',
      );
    } else {
      this.removeMessage(stored);
    }
    return true;
  }

  /** Releases expired message and session locks and makes due scheduled messages available. */
  private expireDue(): void {
    const now = this.clock.now();
    if ((this.deadline && this.deadline.atMs > now) || this.expiring) return;
    this.expiring = true;
    let changed = false;
    try {
      for (const stored of [...this.locks.values()]) {
        const lock = stored.lock!;
        if (!lock.bySession && lock.lockedUntilMs <= now) {
          this.unlock(stored);
          if (stored.state === 'active') this.afterFailedDelivery(stored);
          changed = true;
        }
      }
      for (const session of [...this.sessions.values()]) {
        if (session.lock && session.lock.lockedUntilMs <= now) {
          const ownerId = session.lock.ownerId;
          this.releaseSession(session.id, ownerId);
          this.consumers.find((c) => c.ownerId === ownerId && c.sessionId === session.id)?.sessionLockLost();
          changed = true;
        }
      }
      for (const stored of [...this.scheduled]) {
        if (stored.availableAtMs <= now) {
          this.scheduled.delete(stored);
          changed = true;
        }
      }
      this.deadline?.cancel();
      this.deadline = undefined;
      this.armDeadline(this.earliestDeadline());
    } finally {
      this.expiring = false;
    }
    if (changed) this.dispatch();
  }

  private earliestDeadline(): number {
    let earliest = Infinity;
    for (const stored of this.locks.values()) {
      if (!stored.lock!.bySession) earliest = Math.min(earliest, stored.lock!.lockedUntilMs);
    }
    for (const session of this.sessions.values()) {
      if (session.lock) earliest = Math.min(earliest, session.lock.lockedUntilMs);
    }
    for (const stored of this.scheduled) earliest = Math.min(earliest, stored.availableAtMs);
    return earliest;
  }

  /** Makes sure the timer fires no later than `atMs`. */
  private armDeadline(atMs: number): void {
    if (!Number.isFinite(atMs)) return;
    if (this.deadline && this.deadline.atMs <= atMs) return;
    this.deadline?.cancel();
    const cancel = this.clock.schedule(atMs - this.clock.now(), () => {
      if (this.deadline?.cancel !== cancel) return;
      this.deadline = undefined;
      this.dispatch();
    });
    this.deadline = { atMs, cancel };
  }
}
