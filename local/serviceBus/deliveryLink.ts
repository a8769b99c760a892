/**
 * The endpoint's side of a receiver's link (an AMQP sending link): attaches it (for sessions: accepting a named
 * session or the next free one, holding the attach until one is free or the client's timeout passes), delivers
 * messages within the link credit, answers drain requests and applies the client's settlements to the entity.
 */
import type { AmqpError, Delivery, Sender } from 'rhea';
import {
  Condition,
  DOTNET_TICKS_AT_UNIX_EPOCH,
  DOTNET_TICKS_PER_MS,
  DeadLetterProperty,
  LOCKED_UNTIL_UTC_PROPERTY,
  SESSION_FILTER,
  STANDARD_MESSAGE_FORMAT,
} from './amqpConstants';
import { AmqpConditionError } from './amqpConditionError';
import type { Clock } from './clock';
import type { EndpointLog } from './endpointLog';
import { deliveryTagOf, lockTokenOfDeliveryTag } from './lockToken';
import type { MessageConsumer, MessageDelivery, MessageEntity, ReceiveMode, SessionGrant } from './messageEntity';
import {
  amqpTypes,
  answerDrain,
  deliveryCountOf,
  holdAttach,
  localAttach,
  outcomes,
  releaseAttach,
  remainingCredit,
} from './rheaInternals';

/** A delivery outcome as rhea decodes it from the client's disposition. */
interface ClientOutcome {
  undeliverable_here?: boolean;
  message_annotations?: Record<string, unknown>;
  error?: { condition?: string; description?: string; info?: Record<string, unknown> };
  described?(): unknown;
}

export type OutcomeKind = 'accepted' | 'rejected' | 'modified' | 'released';

/** The .NET ticks (100 ns since 0001-01-01 UTC) of an epoch-ms time, as 8 big-endian bytes (an AMQP long). */
export function dotNetTicksOf(epochMs: number): Buffer {
  const ticks = BigInt(Math.trunc(epochMs)) * DOTNET_TICKS_PER_MS + DOTNET_TICKS_AT_UNIX_EPOCH;
  const bytes = Buffer.alloc(8);
  bytes.writeBigInt64BE(ticks);
  return bytes;
}

export class DeliveryLink implements MessageConsumer {
  sessionId: string | undefined;
  private deliveriesHanded = 0;
  private closed = false;
  private cancelSessionWait: (() => void) | undefined;
  private cancelSessionTimeout: (() => void) | undefined;

  constructor(
    private readonly sender: Sender,
    private readonly entity: MessageEntity,
    readonly ownerId: string,
    readonly receiveMode: ReceiveMode,
    private readonly sourceAddress: string,
    private readonly clock: Clock,
    private readonly log: EndpointLog,
  ) {}

  /** Attaches a receiver of a non-session entity. */
  openWithoutSession(): void {
    this.sender.set_source({ address: this.sourceAddress });
    this.entity.addConsumer(this);
  }

  /**
   * Attaches a session receiver: `requestedSessionId` names the session, undefined asks for the next free one.
   * Without a free session the attach is held for `waitMs`, then refused with `com.microsoft:timeout`.
   */
  openWithSession(requestedSessionId: string | undefined, waitMs: number): void {
    let grant: SessionGrant | undefined;
    try {
      grant = this.entity.acceptSession(this.ownerId, requestedSessionId);
    } catch (error) {
      if (error instanceof AmqpConditionError) {
        this.refuse(error.toAmqpError());
        return;
      }
      throw error;
    }
    if (grant) {
      this.attachSession(grant);
      return;
    }
    holdAttach(this.sender);
    this.log.debug(`${this.describe()}: no free session, attach held for ${waitMs} ms`);
    this.cancelSessionWait = this.entity.waitForSession({
      ownerId: this.ownerId,
      grant: (waited) => {
        this.stopWaiting();
        releaseAttach(this.sender);
        this.attachSession(waited);
      },
    });
    this.cancelSessionTimeout = this.clock.schedule(waitMs, () => {
      this.stopWaiting();
      releaseAttach(this.sender);
      this.refuse({
        condition: Condition.timeout,
        description: `No session of '${this.entity.path}' became available within ${waitMs} ms.`,
      });
    });
  }

  availableCredit(): number {
    if (this.closed || !this.sender.is_open()) return 0;
    return remainingCredit(this.sender, this.deliveriesHanded);
  }

  deliver(delivery: MessageDelivery): void {
    this.deliveriesHanded = Math.max(this.deliveriesHanded, deliveryCountOf(this.sender)) + 1;
    this.sender.send(delivery.encoded, deliveryTagOf(delivery.lockToken), STANDARD_MESSAGE_FORMAT);
  }

  sessionLockLost(): void {
    this.log.debug(`${this.describe()}: session lock expired, detaching`);
    this.closeWithError({
      condition: Condition.sessionLockLost,
      description: `The session lock has expired on the session with id ${this.sessionId}.`,
    });
  }

  /** The client granted credit: deliver what is available. */
  onFlow(): void {
    this.entity.dispatch();
  }

  /** The client asked to drain: deliver what is available, then give up the rest of the credit. */
  onDrain(): void {
    this.entity.dispatch();
    answerDrain(this.sender);
  }

  /** Applies the client's settlement of one delivery and settles it, with the error if the lock was lost. */
  onOutcome(kind: OutcomeKind, delivery: Delivery): void {
    const outcome = (delivery.remote_state ?? {}) as ClientOutcome;
    const tag = typeof delivery.tag === 'string' ? Buffer.from(delivery.tag) : delivery.tag;
    try {
      const lockToken = lockTokenOfDeliveryTag(tag);
      if (kind === 'accepted') {
        this.entity.complete(lockToken);
      } else if (kind === 'modified' && outcome.undeliverable_here) {
        this.entity.defer(lockToken, outcome.message_annotations);
      } else if (kind === 'modified' || kind === 'released') {
        this.entity.abandon(lockToken, outcome.message_annotations);
      } else {
        // The SDK's dead-letter is a rejected outcome with condition com.microsoft:dead-letter and the reason and
        // description (plus propertiesToModify) in `info`; any other rejection dead-letters with its own error.
        const info = { ...(outcome.error?.info ?? {}) };
        const viaSdk = outcome.error?.condition === Condition.deadLetter;
        const reason =
          stringOrUndefined(info[DeadLetterProperty.reason]) ?? (viaSdk ? undefined : outcome.error?.condition);
        const description =
          stringOrUndefined(info[DeadLetterProperty.description]) ?? (viaSdk ? undefined : outcome.error?.description);
        delete info[DeadLetterProperty.reason];
        delete info[DeadLetterProperty.description];
        this.entity.deadLetter(lockToken, reason, description, info);
      }
      // A dead-letter that succeeded is settled as accepted: an echoed rejected outcome carries the error, which
      // the SDK would read as a failed settlement.
      const settledState = kind === 'rejected' ? undefined : outcome.described?.();
      delivery.update(true, settledState ?? outcomes.accepted().described());
    } catch (error) {
      if (!(error instanceof AmqpConditionError)) throw error;
      this.log.debug(`${this.describe()}: ${kind} refused: ${error.message}`);
      delivery.update(true, outcomes.rejected({ error: error.toAmqpError() }).described());
    }
  }

  /** The link or its connection ended: stop delivering and give the session back. */
  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopWaiting();
    this.entity.removeConsumer(this);
  }

  describe(): string {
    const session = this.sessionId === undefined ? '' : ` session '${this.sessionId}'`;
    return `receiver '${this.sender.name}' on '${this.entity.path}'${session}`;
  }

  private attachSession(grant: SessionGrant): void {
    this.sessionId = grant.sessionId;
    this.sender.set_source({ address: this.sourceAddress, filter: { [SESSION_FILTER]: grant.sessionId } });
    localAttach(this.sender).properties = {
      [LOCKED_UNTIL_UTC_PROPERTY]: amqpTypes.wrap_long(dotNetTicksOf(grant.lockedUntilMs)),
    };
    this.log.debug(`${this.describe()}: session accepted, locked until ${new Date(grant.lockedUntilMs).toISOString()}`);
    this.entity.addConsumer(this);
  }

  private refuse(error: AmqpError): void {
    this.log.debug(`${this.describe()}: refused: ${error.condition}: ${error.description}`);
    this.closeWithError(error);
  }

  private closeWithError(error: AmqpError): void {
    this.dispose();
    this.sender.close(error);
  }

  private stopWaiting(): void {
    this.cancelSessionWait?.();
    this.cancelSessionTimeout?.();
    this.cancelSessionWait = undefined;
    this.cancelSessionTimeout = undefined;
  }
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
