/**
 * The request/response operations of an entity's `$management` node that the SDK uses: peek, lock renewal,
 * deferred messages (receive by sequence number, settle by lock token), session lock renewal and session state.
 * Any other operation is answered `amqp:not-implemented`, naming it.
 */
import type { Message } from 'rhea';
import { Condition, DispositionStatus, ManagementKey, Operation, StatusCode } from './amqpConstants';
import { AmqpConditionError } from './amqpConditionError';
import { lockTokenOfUuidBytes, uuidBytesOf } from './lockToken';
import type { MessageEntity } from './messageEntity';
import type { ResolvedEntity } from './serviceBusNamespace';
import { amqpTypes } from './rheaInternals';

/** AMQP type code of a timestamp, for arrays of expirations. */
const TIMESTAMP_TYPE_CODE = 0x83;

export interface ManagementRequestContext {
  /** The entity whose `$management` node received the request. */
  readonly entity: ResolvedEntity;
  /** Lock owner for a receive link named in `associated-link-name` (same connection). */
  ownerIdOfLink(linkName: string): string;
  /** Lock owner for messages received through the management node itself. */
  readonly managementOwnerId: string;
}

export interface ManagementResponse {
  readonly statusCode: number;
  readonly statusDescription: string;
  readonly errorCondition?: string;
  readonly body?: unknown;
}

type RequestBody = Record<string, unknown>;

/** Answers one management request; never throws (failures become error responses). */
export function answerManagementRequest(request: Message, context: ManagementRequestContext): ManagementResponse {
  const operation: unknown = request.application_properties?.operation;
  try {
    const body = isRecord(request.body) ? request.body : {};
    const linkName: unknown = request.application_properties?.[ManagementKey.associatedLinkName];
    const owner = typeof linkName === 'string' ? context.ownerIdOfLink(linkName) : undefined;
    switch (operation) {
      case Operation.peekMessage:
        return peek(receivable(context, operation), body);
      case Operation.renewLock:
        return ok({
          [ManagementKey.expirations]: timestamps(
            lockTokens(body).map((token) => receivable(context, operation).renewLock(token)),
          ),
        });
      case Operation.receiveBySequenceNumber:
        return receiveDeferred(receivable(context, operation), body, owner ?? context.managementOwnerId);
      case Operation.updateDisposition:
        return updateDisposition(receivable(context, operation), body);
      case Operation.renewSessionLock: {
        const expiration = receivable(context, operation).renewSessionLock(sessionIdOf(body), owner);
        return ok({ [ManagementKey.expiration]: new Date(expiration) });
      }
      case Operation.getSessionState: {
        const state = receivable(context, operation).getSessionState(sessionIdOf(body), owner);
        return ok({ [ManagementKey.sessionState]: state ?? null });
      }
      case Operation.setSessionState: {
        const state = body[ManagementKey.sessionState];
        if (state !== null && state !== undefined && !Buffer.isBuffer(state)) {
          throw argumentError(`'${ManagementKey.sessionState}' must be binary or null`);
        }
        receivable(context, operation).setSessionState(sessionIdOf(body), owner, state ?? undefined);
        return ok({});
      }
      default:
        throw new AmqpConditionError(
          Condition.notImplemented,
          `The operation '${String(operation)}' is not supported by the local Service Bus endpoint.`,
        );
    }
  } catch (error) {
    if (error instanceof AmqpConditionError) {
      return {
        statusCode: statusCodeOf(error.condition),
        statusDescription: error.message,
        errorCondition: error.condition,
      };
    }
    return {
      statusCode: StatusCode.internal,
      statusDescription: `The operation '${String(operation)}' failed: ${(error as Error).message}`,
      errorCondition: Condition.internalError,
    };
  }
}

function ok(body: unknown): ManagementResponse {
  return { statusCode: StatusCode.ok, statusDescription: 'OK', body };
}

function peek(entity: MessageEntity, body: RequestBody): ManagementResponse {
  const from =
    body[ManagementKey.fromSequenceNumber] === undefined ? 1 : sequenceNumberOf(body[ManagementKey.fromSequenceNumber]);
  const count = body[ManagementKey.messageCount] ?? 1;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1) {
    throw argumentError(`'${ManagementKey.messageCount}' must be an integer >= 1`);
  }
  const sessionId = body[ManagementKey.sessionId];
  const messages = entity.peek(from, count, typeof sessionId === 'string' ? sessionId : undefined);
  if (messages.length === 0) return { statusCode: StatusCode.noContent, statusDescription: 'No messages' };
  return ok({ [ManagementKey.messages]: messages.map((encoded) => ({ [ManagementKey.message]: encoded })) });
}

function receiveDeferred(entity: MessageEntity, body: RequestBody, ownerId: string): ManagementResponse {
  const raw = body[ManagementKey.sequenceNumbers];
  if (!Array.isArray(raw) || raw.length === 0)
    throw argumentError(`'${ManagementKey.sequenceNumbers}' must be a non-empty array`);
  const mode = body[ManagementKey.receiverSettleMode] === 0 ? 'receiveAndDelete' : 'peekLock';
  const sessionId = body[ManagementKey.sessionId];
  const deliveries = entity.receiveDeferred(
    raw.map(sequenceNumberOf),
    ownerId,
    mode,
    typeof sessionId === 'string' ? sessionId : undefined,
  );
  return ok({
    [ManagementKey.messages]: deliveries.map((delivery) => ({
      [ManagementKey.lockToken]: amqpTypes.wrap_uuid(uuidBytesOf(delivery.lockToken)),
      [ManagementKey.message]: delivery.encoded,
    })),
  });
}

function updateDisposition(entity: MessageEntity, body: RequestBody): ManagementResponse {
  const status = body[ManagementKey.dispositionStatus];
  const reason = body[ManagementKey.deadLetterReason];
  const description = body[ManagementKey.deadLetterDescription];
  const modified = body[ManagementKey.propertiesToModify];
  const propertiesToModify = isRecord(modified) ? modified : undefined;
  for (const token of lockTokens(body)) {
    switch (status) {
      case DispositionStatus.completed:
        entity.complete(token);
        break;
      case DispositionStatus.abandoned:
        entity.abandon(token, propertiesToModify);
        break;
      case DispositionStatus.deferred:
        entity.defer(token, propertiesToModify);
        break;
      case DispositionStatus.deadLettered:
        entity.deadLetter(
          token,
          typeof reason === 'string' ? reason : undefined,
          typeof description === 'string' ? description : undefined,
          propertiesToModify,
        );
        break;
      default:
        throw argumentError(
          `'${ManagementKey.dispositionStatus}' '${String(status)}' is not one of completed, abandoned, defered, suspended`,
        );
    }
  }
  return ok({});
}

function receivable(context: ManagementRequestContext, operation: string): MessageEntity {
  const entity = context.entity.receiveFrom;
  if (!entity) {
    throw new AmqpConditionError(
      Condition.notAllowed,
      `The operation '${operation}' needs a queue or subscription; '${context.entity.path}' is a topic.`,
    );
  }
  return entity;
}

function lockTokens(body: RequestBody): string[] {
  const raw = body[ManagementKey.lockTokens];
  if (!Array.isArray(raw) || raw.length === 0)
    throw argumentError(`'${ManagementKey.lockTokens}' must be a non-empty array of uuids`);
  return raw.map((token) => {
    if (!Buffer.isBuffer(token) || token.length !== 16)
      throw argumentError(`'${ManagementKey.lockTokens}' must hold uuids`);
    return lockTokenOfUuidBytes(token);
  });
}

function sessionIdOf(body: RequestBody): string {
  const sessionId = body[ManagementKey.sessionId];
  if (typeof sessionId !== 'string') throw argumentError(`'${ManagementKey.sessionId}' must be a string`);
  return sessionId;
}

/** A long as rhea decodes it: a number when it fits 53 bits, else 8 big-endian bytes. */
function sequenceNumberOf(value: unknown): number {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (Buffer.isBuffer(value) && value.length === 8) return Number(value.readBigInt64BE());
  throw argumentError('a sequence number must be a long');
}

function timestamps(epochMs: number[]): unknown {
  return amqpTypes.wrap_array(epochMs, TIMESTAMP_TYPE_CODE, undefined);
}

function argumentError(description: string): AmqpConditionError {
  return new AmqpConditionError(Condition.argumentError, description);
}

function statusCodeOf(condition: string): number {
  switch (condition) {
    case Condition.messageLockLost:
    case Condition.sessionLockLost:
    case Condition.sessionCannotBeLocked:
      return StatusCode.gone;
    case Condition.messageNotFound:
      return StatusCode.notFound;
    case Condition.argumentError:
    case Condition.notAllowed:
      return StatusCode.badRequest;
    case Condition.notImplemented:
      return StatusCode.notImplemented;
    default:
      return StatusCode.internal;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);
}
