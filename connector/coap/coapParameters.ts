/**
 * CoAP (RFC 7252 §4.8, §5.10) and Observe (RFC 7641 §3.4) protocol constants, each named once with its meaning.
 * Times are milliseconds unless the name says otherwise. The derived values follow the RFC's formulas from the defaults, so changing a base
 * constant here changes everything that depends on it.
 */

/** Initial wait for an ACK to a Confirmable message (RFC 7252 §4.8: ACK_TIMEOUT = 2 s). */
export const ACK_TIMEOUT_MS = 2_000;
/** The initial timeout is a random duration in [ACK_TIMEOUT, ACK_TIMEOUT * ACK_RANDOM_FACTOR] (§4.8: 1.5). */
export const ACK_RANDOM_FACTOR = 1.5;
/** Retransmissions of a Confirmable message before giving up; the timeout doubles each time (§4.8: 4). */
export const MAX_RETRANSMIT = 4;
/** Outstanding interactions allowed per peer at once (§4.7: NSTART = 1). */
export const NSTART = 1;
/** Time a datagram may take from the start of its transmission to the end of its reception (§4.8.2: 100 s). */
export const MAX_LATENCY_MS = 100_000;
/** Time a node takes to turn a Confirmable message into an ACK (§4.8.2: PROCESSING_DELAY = ACK_TIMEOUT). */
export const PROCESSING_DELAY_MS = ACK_TIMEOUT_MS;

/**
 * Time from the first transmission of a Confirmable message to its last retransmission:
 * ACK_TIMEOUT * (2^MAX_RETRANSMIT - 1) * ACK_RANDOM_FACTOR = 45 s.
 */
export const MAX_TRANSMIT_SPAN_MS = ACK_TIMEOUT_MS * (2 ** MAX_RETRANSMIT - 1) * ACK_RANDOM_FACTOR;
/**
 * Time from the first transmission of a Confirmable message until the sender gives up waiting for an ACK or RST:
 * ACK_TIMEOUT * (2^(MAX_RETRANSMIT + 1) - 1) * ACK_RANDOM_FACTOR = 93 s.
 */
export const MAX_TRANSMIT_WAIT_MS = ACK_TIMEOUT_MS * (2 ** (MAX_RETRANSMIT + 1) - 1) * ACK_RANDOM_FACTOR;
/**
 * Time from the first transmission of a Confirmable message until its Message ID may be reused, and for how
 * long a receiver remembers it to detect duplicates: MAX_TRANSMIT_SPAN + 2 * MAX_LATENCY + PROCESSING_DELAY = 247 s.
 */
export const EXCHANGE_LIFETIME_MS = MAX_TRANSMIT_SPAN_MS + 2 * MAX_LATENCY_MS + PROCESSING_DELAY_MS;
/** The same for Non-confirmable messages: MAX_TRANSMIT_SPAN + MAX_LATENCY = 145 s. */
export const NON_LIFETIME_MS = MAX_TRANSMIT_SPAN_MS + MAX_LATENCY_MS;

/** Largest message we send or accept (§4.6: 1152 bytes fits an IPv6 MTU of 1280 with a 1024-byte payload). */
export const MAX_MESSAGE_SIZE = 1152;
/** Tokens are 0 to 8 bytes; lengths 9-15 are reserved and a message format error (§3). */
export const MAX_TOKEN_LENGTH = 8;
/**
 * Option numbers are 16-bit (§12.2: the registry spans 0-65535). Deltas are summed (§3.1), and the largest delta,
 * 269 + 0xFFFF, can carry the sum past this: a message whose options do is a message format error.
 */
export const MAX_OPTION_NUMBER = 0xffff;
/** The largest option delta or length the format can express (§3.1: nibble 14 + a 16-bit extension = 269 + 65535). */
export const MAX_OPTION_EXTENDED_VALUE = 269 + 0xffff;
/** The message ID space (§3: 16 bits). */
export const MESSAGE_ID_MODULUS = 2 ** 16;

/** Observe sequence numbers are 24-bit (RFC 7641 §4.2). */
export const OBSERVE_SEQUENCE_MODULUS = 2 ** 24;
/**
 * Half the sequence space: V2 is newer than V1 when it is ahead by less than 2^23 in modular order
 * (RFC 7641 §3.4: (V1 < V2 and V2 - V1 < 2^23) or (V1 > V2 and V1 - V2 > 2^23)).
 */
export const OBSERVE_SEQUENCE_HALF = 2 ** 23;
/**
 * A notification arriving more than this after the last one is newer whatever its number (RFC 7641 §3.4: 128 s).
 * In seconds, the unit observations keep their arrival times in.
 */
export const OBSERVE_FRESHNESS_SECONDS = 128;

/** The CoAP default UDP port (§6.1), where LwM2M servers listen. */
export const COAP_DEFAULT_PORT = 5683;

/**
 * Block-wise transfer (RFC 7959). A block is 2^(SZX + 4) bytes, SZX 0-6 (16 to 1024 bytes); SZX 7 is reserved
 * (BERT, CoAP over TCP only) and a block option carrying it is refused (§2.2).
 */
export const MAX_BLOCK_SZX = 6;
/** NUM is at most 20 bits: a block option value is at most 3 bytes (§2.2). */
export const MAX_BLOCK_NUM = 2 ** 20 - 1;
/**
 * Block size of outgoing Block1 requests (writes) until a device asks for smaller blocks (a Block1 option with a
 * smaller SZX on its 2.31 Continue or 4.13): SZX 6, 1024 bytes, the payload that fits MAX_MESSAGE_SIZE (§4.6).
 */
export const DEFAULT_BLOCK_SZX = MAX_BLOCK_SZX;
/**
 * Largest request body reassembled from Block1 blocks (registrations and updates): a larger one gets 4.13 Request
 * Entity Too Large with Size1 = this. Equal to MAX_LINK_FORMAT_BYTES (lwm2m/linkFormat.ts), the largest
 * registration payload the registration interface takes, so nothing the layer above would refuse is buffered.
 */
export const MAX_BLOCK1_BODY_BYTES = 16 * 1024;
/**
 * Block1 reassemblies in progress at once (all peers) and per peer: beyond these a new one gets 5.03 (all peers)
 * or replaces the peer's oldest. Memory is bounded by MAX_BLOCK1_REASSEMBLIES * MAX_BLOCK1_BODY_BYTES (4 MB).
 */
export const MAX_BLOCK1_REASSEMBLIES = 256;
export const MAX_BLOCK1_REASSEMBLIES_PER_PEER = 2;
/**
 * A Block1 reassembly with no new block for this long is forgotten (its next block gets 4.08): a client sends the
 * next block as soon as it has the 2.31 Continue, so a gap longer than MAX_TRANSMIT_WAIT (93 s, the longest a
 * Confirmable block may take, retransmissions included) means the client gave up.
 */
export const BLOCK1_REASSEMBLY_LIFETIME_MS = MAX_TRANSMIT_WAIT_MS;
/**
 * Largest response or notification body reassembled from Block2 blocks: a larger one fails the request (or drops
 * the notification) as soon as its Size2 or its blocks say so, before the rest is fetched.
 */
export const MAX_BLOCK2_BODY_BYTES = 64 * 1024;
/**
 * Bound on fetching the remaining blocks of a block-wise notification (its GETs, queued behind the device's other
 * requests): MAX_TRANSMIT_WAIT, the longest one unanswered Confirmable request may take.
 */
export const BLOCK2_NOTIFICATION_FETCH_TIMEOUT_MS = MAX_TRANSMIT_WAIT_MS;
