/**
 * AMQP 1.0 and Service Bus protocol names used by the local Service Bus-compatible endpoint, each defined once
 * with its meaning. Values are those the `@azure/service-bus` 7.x SDK sends and expects.
 */

/** Message format of the SDK's batch envelope: its body is one data section per encoded inner message. */
export const BATCH_MESSAGE_FORMAT = 0x80013700;
/** Standard AMQP message format (one message per transfer). */
export const STANDARD_MESSAGE_FORMAT = 0;
/** Largest accepted message or batch, bytes: the Service Bus Standard tier limit (256 KiB). */
export const MAX_MESSAGE_SIZE_BYTES = 256 * 1024;

/** Claims-based security node: the SDK puts a token here before attaching each entity link. */
export const CBS_NODE = '$cbs';
/** Suffix of an entity's request/response node (peek, renew-lock, session state, ...). */
export const MANAGEMENT_NODE_SUFFIX = '/$management';
/** Suffix of an entity's dead-letter queue. */
export const DEAD_LETTER_QUEUE_SUFFIX = '/$DeadLetterQueue';
/** Segment between a topic and a subscription name in an address: `topic/Subscriptions/name`. */
export const SUBSCRIPTIONS_SEGMENT = 'Subscriptions';

/** Source filter key of a session receiver; value = session id, or null for "next available session". */
export const SESSION_FILTER = 'com.microsoft:session-filter';
/** Attach property: session lock expiry in .NET ticks (100 ns since 0001-01-01), a long. */
export const LOCKED_UNTIL_UTC_PROPERTY = 'com.microsoft:locked-until-utc';
/** Attach property: how long the client waits for a session, milliseconds. */
export const LINK_TIMEOUT_PROPERTY = 'com.microsoft:timeout';
/** Wait for a free session when the client sends no timeout, milliseconds (the service's own bound is 65 s). */
export const DEFAULT_ACCEPT_SESSION_TIMEOUT_MS = 60_000;
/**
 * Longest wait for a free session, milliseconds: a held attach is answered (session or `com.microsoft:timeout`) at
 * the latest this long after it arrived, whatever the client asked. The SDK gives up on any attach after a fixed
 * 60 s (rhea-promise's operation timeout, which @azure/service-bus 7.x leaves at its default) and then ends the AMQP
 * session, while its `com.microsoft:timeout` is its retry timeout (60 s by default) less only 20 to 120 ms. An answer
 * that crosses the SDK's `end` makes its rhea detach the link on the channel it has just ended, and the endpoint's
 * rhea then drops the whole connection ("detach received on invalid channel"), failing every receiver on it. Ten
 * seconds below the SDK's limit, the answer arrives first even on a busy machine.
 */
export const MAX_SESSION_WAIT_MS = 50_000;

/** .NET ticks at the Unix epoch and ticks per millisecond, for `com.microsoft:locked-until-utc`. */
export const DOTNET_TICKS_AT_UNIX_EPOCH = 621_355_968_000_000_000n;
export const DOTNET_TICKS_PER_MS = 10_000n;

/** Message annotations set by the broker and read by the SDK. */
export const Annotation = {
  /** long: entity-unique, increasing sequence number. */
  sequenceNumber: 'x-opt-sequence-number',
  /** timestamp: when the entity accepted the message. */
  enqueuedTime: 'x-opt-enqueued-time',
  /** timestamp: when the message (or its session) lock expires. */
  lockedUntil: 'x-opt-locked-until',
  /** int: see {@link MessageState}. */
  messageState: 'x-opt-message-state',
  /** timestamp set by the sender: the message becomes available only then. */
  scheduledEnqueueTime: 'x-opt-scheduled-enqueue-time',
} as const;

/** Values of `x-opt-message-state`. */
export const MessageState = { active: 0, deferred: 1, scheduled: 2 } as const;

/** Application properties the service adds to a dead-lettered message. */
export const DeadLetterProperty = { reason: 'DeadLetterReason', description: 'DeadLetterErrorDescription' } as const;
/** Dead-letter reasons set by the broker itself. */
export const DeadLetterReason = {
  maxDeliveryCountExceeded: 'MaxDeliveryCountExceeded',
  timeToLiveExpired: 'TTLExpiredException',
} as const;

/** AMQP error conditions the endpoint sends; the SDK maps each to an error code. */
export const Condition = {
  /** Rejected outcome that dead-letters a message; `info` carries reason and description. */
  deadLetter: 'com.microsoft:dead-letter',
  sessionCannotBeLocked: 'com.microsoft:session-cannot-be-locked',
  sessionLockLost: 'com.microsoft:session-lock-lost',
  messageLockLost: 'com.microsoft:message-lock-lost',
  messageNotFound: 'com.microsoft:message-not-found',
  timeout: 'com.microsoft:timeout',
  argumentError: 'com.microsoft:argument-error',
  notFound: 'amqp:not-found',
  notAllowed: 'amqp:not-allowed',
  notImplemented: 'amqp:not-implemented',
  decodeError: 'amqp:decode-error',
  internalError: 'amqp:internal-error',
  messageSizeExceeded: 'amqp:link:message-size-exceeded',
} as const;

/** `operation` application property of management and CBS requests. */
export const Operation = {
  putToken: 'put-token',
  peekMessage: 'com.microsoft:peek-message',
  renewLock: 'com.microsoft:renew-lock',
  receiveBySequenceNumber: 'com.microsoft:receive-by-sequence-number',
  updateDisposition: 'com.microsoft:update-disposition',
  renewSessionLock: 'com.microsoft:renew-session-lock',
  getSessionState: 'com.microsoft:get-session-state',
  setSessionState: 'com.microsoft:set-session-state',
} as const;

/** Keys of management request and response bodies. */
export const ManagementKey = {
  fromSequenceNumber: 'from-sequence-number',
  messageCount: 'message-count',
  sessionId: 'session-id',
  lockTokens: 'lock-tokens',
  lockToken: 'lock-token',
  sequenceNumbers: 'sequence-numbers',
  receiverSettleMode: 'receiver-settle-mode',
  dispositionStatus: 'disposition-status',
  deadLetterReason: 'deadletter-reason',
  deadLetterDescription: 'deadletter-description',
  propertiesToModify: 'properties-to-modify',
  sessionState: 'session-state',
  messages: 'messages',
  message: 'message',
  expirations: 'expirations',
  expiration: 'expiration',
  associatedLinkName: 'associated-link-name',
} as const;

/** `disposition-status` values of update-disposition (spelling as the SDK sends them). */
export const DispositionStatus = {
  completed: 'completed',
  abandoned: 'abandoned',
  deferred: 'defered',
  deadLettered: 'suspended',
} as const;

/** Response status codes of management and CBS requests (HTTP-like). */
export const StatusCode = {
  ok: 200,
  noContent: 204,
  badRequest: 400,
  notFound: 404,
  gone: 410,
  internal: 500,
  notImplemented: 501,
} as const;
