/**
 * Block-wise transfer (RFC 7959) for the CoAP endpoint: the Block1/Block2 option values (§2.2), the reassembly of
 * incoming Block1 requests (server side, §2.3), and the state machine of an outgoing request whose payload goes as
 * Block1 or whose response (or notification, §3.4) comes as Block2 (client side).
 *
 * Contracts:
 * - Nothing partial leaves this module: a request reaches the handler, and a response or notification reaches the
 *   layer above, only with its whole body, or not at all.
 * - Memory is bounded by the limits in coapParameters.ts (body sizes, reassemblies in progress, their lifetime).
 * - A hostile block option (longer than 3 bytes, SZX 7, a NUM that does not follow, sizes that do not add up) is
 *   refused (4.00 / 4.08 / 4.13) or fails the transfer; it never throws out of this module.
 */
import { CoapMessage, CoapOption, Code, OptionNumber, formatCode, isSuccessCode, uintOption } from './coapMessage';
import { MAX_BLOCK_NUM, MAX_BLOCK_SZX } from './coapParameters';

/** A Block1 or Block2 option value (§2.2): block number, more flag, size exponent (size = 2^(szx + 4)). */
export interface BlockValue {
  num: number;
  more: boolean;
  szx: number;
}

/** The block size of a size exponent, bytes (16 to 1024). */
export function blockSize(szx: number): number {
  return 16 << szx;
}

/** The option carrying `block` (Block1 or Block2). */
export function blockOption(number: number, block: BlockValue): CoapOption {
  return uintOption(number, block.num * 16 + (block.more ? 8 : 0) + block.szx);
}

/**
 * The Block1 or Block2 option of `message`: undefined when absent, a string saying what is wrong when invalid
 * (longer than 3 bytes, or the reserved SZX 7).
 */
export function readBlock(message: CoapMessage, number: number): BlockValue | string | undefined {
  const option = message.options.find((o) => o.number === number);
  if (!option) return undefined;
  if (option.value.length > 3) return `block option ${number} is ${option.value.length} bytes (at most 3)`;
  let value = 0;
  for (const byte of option.value) value = value * 256 + byte;
  const szx = value & 0x07;
  if (szx > MAX_BLOCK_SZX) return `block option ${number} carries the reserved SZX ${szx}`;
  return { num: Math.floor(value / 16), more: (value & 0x08) !== 0, szx };
}

function hasOption(message: { options: readonly CoapOption[] }, number: number): boolean {
  for (const option of message.options) if (option.number === number) return true;
  return false;
}

function withoutOptions(options: readonly CoapOption[], numbers: readonly number[]): CoapOption[] {
  return options.filter((o) => !numbers.includes(o.number));
}

function sameOption(a: CoapMessage, b: CoapMessage, number: number): boolean {
  const x = a.options.find((o) => o.number === number);
  const y = b.options.find((o) => o.number === number);
  return x === undefined ? y === undefined : y !== undefined && x.value.equals(y.value);
}

// ---- server side: incoming Block1 ----

export interface Block1Limits {
  /** Largest reassembled body, bytes; beyond it 4.13 with Size1. */
  maxBodyBytes: number;
  /** Reassemblies in progress, all peers; beyond it a new one gets 5.03. */
  maxReassemblies: number;
  /** Reassemblies in progress per peer; beyond it the peer's oldest is forgotten. */
  maxPerPeer: number;
  /** A reassembly with no block for this long is forgotten, ms. */
  lifetimeMs: number;
}

export interface Block1Answer {
  code: number;
  options?: CoapOption[];
  payload?: Buffer;
}

/**
 * What to do with an incoming request: hand the `whole` request to the handler (and put `echo`, the Block1 of its
 * last block, on the handler's response), or send `answer` (2.31 Continue, or a refusal) without calling it.
 */
export type Block1Outcome =
  { kind: 'whole'; request: CoapMessage; echo?: CoapOption } | { kind: 'answer'; response: Block1Answer };

interface Reassembly {
  peer: string;
  chunks: Buffer[];
  received: number;
  expiresAt: number;
}

/**
 * Reassembles Block1 requests per (peer, method, URI) (§2.3): each block but the last gets 2.31 Continue echoing its
 * Block1; a block that does not continue a reassembly gets 4.08; a body past the limit gets 4.13 with Size1.
 */
export class Block1Reassembler {
  private readonly reassemblies = new Map<string, Reassembly>();

  constructor(private readonly limits: Block1Limits) {}

  get inProgress(): number {
    return this.reassemblies.size;
  }

  take(request: CoapMessage, peer: string, now: number): Block1Outcome {
    if (!hasOption(request, OptionNumber.BLOCK1)) return { kind: 'whole', request };
    const block = readBlock(request, OptionNumber.BLOCK1);
    this.expire(now);
    if (typeof block !== 'object') return refuse(Code.BAD_REQUEST, block ?? 'invalid Block1');
    const key = `${peer} ${request.code} ${uriKey(request)}`;
    const size = blockSize(block.szx);
    const offset = block.num * size;
    const { maxBodyBytes } = this.limits;
    const announced = readSize(request, OptionNumber.SIZE1);
    if (offset + request.payload.length > maxBodyBytes || (announced !== undefined && announced > maxBodyBytes)) {
      this.reassemblies.delete(key);
      return {
        kind: 'answer',
        response: {
          code: Code.REQUEST_ENTITY_TOO_LARGE,
          options: [uintOption(OptionNumber.SIZE1, maxBodyBytes)],
          payload: Buffer.from(`the request body exceeds ${maxBodyBytes} bytes`),
        },
      };
    }
    if (block.more ? request.payload.length !== size : request.payload.length > size) {
      this.reassemblies.delete(key);
      return refuse(
        Code.BAD_REQUEST,
        `Block1 ${block.num} carries ${request.payload.length} bytes in ${size}-byte blocks`,
      );
    }
    let reassembly = this.reassemblies.get(key);
    if (block.num === 0) {
      if (!block.more) {
        this.reassemblies.delete(key);
        return {
          kind: 'whole',
          request: strip(request, request.payload),
          echo: blockOption(OptionNumber.BLOCK1, block),
        };
      }
      this.reassemblies.delete(key);
      if (!this.makeRoom(peer)) {
        return refuse(Code.SERVICE_UNAVAILABLE, 'too many block-wise requests in progress; retry later');
      }
      reassembly = { peer, chunks: [], received: 0, expiresAt: 0 };
    } else if (!reassembly || reassembly.received !== offset) {
      this.reassemblies.delete(key);
      return refuse(Code.REQUEST_ENTITY_INCOMPLETE, `Block1 ${block.num} does not continue a request in progress`);
    }
    reassembly.chunks.push(request.payload);
    reassembly.received += request.payload.length;
    // Re-inserted, so the map stays ordered by last activity (expiry and eviction take the oldest first).
    this.reassemblies.delete(key);
    if (!block.more) {
      const body = Buffer.concat(reassembly.chunks, reassembly.received);
      return { kind: 'whole', request: strip(request, body), echo: blockOption(OptionNumber.BLOCK1, block) };
    }
    reassembly.expiresAt = now + this.limits.lifetimeMs;
    this.reassemblies.set(key, reassembly);
    return { kind: 'answer', response: { code: Code.CONTINUE, options: [blockOption(OptionNumber.BLOCK1, block)] } };
  }

  private expire(now: number): void {
    for (const [key, reassembly] of this.reassemblies) {
      if (reassembly.expiresAt > now) break;
      this.reassemblies.delete(key);
    }
  }

  /** Whether a new reassembly for `peer` fits, after forgetting the peer's oldest beyond its share. */
  private makeRoom(peer: string): boolean {
    let ofPeer = 0;
    let oldest: string | undefined;
    for (const [key, reassembly] of this.reassemblies) {
      if (reassembly.peer !== peer) continue;
      ofPeer++;
      oldest ??= key;
    }
    if (ofPeer >= this.limits.maxPerPeer && oldest !== undefined) this.reassemblies.delete(oldest);
    return this.reassemblies.size < this.limits.maxReassemblies;
  }
}

function refuse(code: number, reason: string): Block1Outcome {
  return { kind: 'answer', response: { code, payload: Buffer.from(reason) } };
}

/** The request as the handler sees it: the whole body, without the block options. */
function strip(request: CoapMessage, body: Buffer): CoapMessage {
  return {
    ...request,
    options: withoutOptions(request.options, [OptionNumber.BLOCK1, OptionNumber.SIZE1]),
    payload: body,
  };
}

/** What identifies the resource a request is for (§2.3: the blocks of one body share their URI). */
function uriKey(request: CoapMessage): string {
  let key = '';
  for (const option of request.options) {
    if (
      option.number === OptionNumber.URI_HOST ||
      option.number === OptionNumber.URI_PORT ||
      option.number === OptionNumber.URI_PATH ||
      option.number === OptionNumber.URI_QUERY
    ) {
      key += `${option.number}:${option.value.toString('hex')};`;
    }
  }
  return key;
}

/** A Size1 or Size2 value; a value longer than 4 bytes reads as infinite (too large). */
function readSize(message: CoapMessage, number: number): number | undefined {
  const option = message.options.find((o) => o.number === number);
  if (!option) return undefined;
  if (option.value.length > 4) return Number.POSITIVE_INFINITY;
  let value = 0;
  for (const byte of option.value) value = value * 256 + byte;
  return value;
}

// ---- client side: outgoing Block1, incoming Block2 ----

/** An outgoing request as the endpoint sends it. */
export interface BlockRequest {
  code: number;
  options: CoapOption[];
  payload?: Buffer;
}

export type TransferStep =
  { kind: 'send'; request: BlockRequest } | { kind: 'done'; response: CoapMessage } | { kind: 'fail'; reason: string };

/** Whether a response to `request` starts a block-wise step: a Block2 body to fetch, or a 4.13 asking for blocks. */
export function needsTransfer(request: BlockRequest, response: CoapMessage): boolean {
  if (response.code === Code.REQUEST_ENTITY_TOO_LARGE) return (request.payload?.length ?? 0) > 0;
  return request.code === Code.GET && isSuccessCode(response.code) && hasOption(response, OptionNumber.BLOCK2);
}

interface Block1State {
  szx: number;
  /** Bytes the device has taken so far (offset of the block in flight). */
  offset: number;
  num: number;
  /** Length of the block in flight. */
  length: number;
}

interface Block2State {
  /** The first block (its options and token are the whole response's). */
  first: CoapMessage;
  chunks: Buffer[];
  received: number;
  /** NUM of the last block taken. */
  num: number;
}

/**
 * One outgoing request's block-wise transfer. `start` gives the first request to send (in blocks when the payload is
 * larger than the block size); `next` takes each response and says what to send next, or the whole response, or why
 * the transfer failed. Block2 continuations are GETs of the same URI (and Accept) without Observe (§2.4, §3.4).
 */
export class OutgoingTransfer {
  private block1?: Block1State;
  private block2?: Block2State;

  /**
   * `request`: the request as the caller made it (for a notification, a GET of the observed URI); `maxBodyBytes`:
   * the largest Block2 body taken.
   */
  constructor(
    private readonly request: BlockRequest,
    private readonly maxBodyBytes: number,
  ) {}

  /** The Block1 size exponent in use (smaller than asked when the device asked for smaller blocks). */
  get block1Szx(): number | undefined {
    return this.block1?.szx;
  }

  /** The first request: the request itself, or its first Block1 block when its payload exceeds 2^(szx + 4) bytes. */
  start(szx: number): BlockRequest {
    const payload = this.request.payload;
    if (!payload || payload.length <= blockSize(szx)) return this.request;
    return this.sendBlock1({ szx, offset: 0, num: 0, length: 0 });
  }

  next(response: CoapMessage): TransferStep {
    if (this.block2) return this.nextBlock2(response);
    if (this.block1) {
      const step = this.nextBlock1(response);
      if (step) return step;
    } else if (response.code === Code.REQUEST_ENTITY_TOO_LARGE) {
      // A plain request refused as too large: blocks, if the device said which size it takes (§2.9.3).
      const preferred = readBlock(response, OptionNumber.BLOCK1);
      const payload = this.request.payload;
      if (typeof preferred === 'object' && payload && payload.length > blockSize(preferred.szx)) {
        return { kind: 'send', request: this.sendBlock1({ szx: preferred.szx, offset: 0, num: 0, length: 0 }) };
      }
      return { kind: 'done', response };
    }
    if (this.request.code === Code.GET && isSuccessCode(response.code) && hasOption(response, OptionNumber.BLOCK2)) {
      return this.firstBlock2(response);
    }
    return { kind: 'done', response };
  }

  /** The step after a response to a Block1 block; undefined when the Block1 part is over (the final response). */
  private nextBlock1(response: CoapMessage): TransferStep | undefined {
    const state = this.block1 as Block1State;
    const total = (this.request.payload as Buffer).length;
    const more = state.offset + state.length < total;
    const echo = readBlock(response, OptionNumber.BLOCK1);
    if (response.code === Code.REQUEST_ENTITY_TOO_LARGE && typeof echo === 'object' && echo.szx < state.szx) {
      // The device takes smaller blocks: start over with its size (§2.9.3).
      return { kind: 'send', request: this.sendBlock1({ szx: echo.szx, offset: 0, num: 0, length: 0 }) };
    }
    if (!more) {
      if (response.code === Code.CONTINUE)
        return { kind: 'fail', reason: 'the device answered the last block with 2.31 Continue' };
      return undefined;
    }
    if (!isSuccessCode(response.code)) return { kind: 'done', response };
    if (typeof echo !== 'object' || echo.num !== state.num) {
      return {
        kind: 'fail',
        reason: `the device answered Block1 ${state.num} with ${formatCode(response.code)} and no matching Block1`,
      };
    }
    // Continue, with the device's smaller block size if it asked for one (§2.3); the offset stays a multiple of it.
    const szx = Math.min(echo.szx, state.szx);
    return { kind: 'send', request: this.sendBlock1({ szx, offset: state.offset + state.length, num: 0, length: 0 }) };
  }

  private sendBlock1(state: Block1State): BlockRequest {
    const payload = this.request.payload as Buffer;
    const size = blockSize(state.szx);
    state.num = state.offset / size;
    state.length = Math.min(size, payload.length - state.offset);
    this.block1 = state;
    const more = state.offset + state.length < payload.length;
    const options = [
      ...withoutOptions(this.request.options, [OptionNumber.BLOCK1, OptionNumber.SIZE1]),
      blockOption(OptionNumber.BLOCK1, { num: state.num, more, szx: state.szx }),
    ];
    if (state.num === 0) options.push(uintOption(OptionNumber.SIZE1, payload.length));
    return {
      code: this.request.code,
      options,
      payload: payload.subarray(state.offset, state.offset + state.length),
    };
  }

  private firstBlock2(response: CoapMessage): TransferStep {
    const block = readBlock(response, OptionNumber.BLOCK2);
    if (typeof block !== 'object') return { kind: 'fail', reason: block ?? 'invalid Block2' };
    if (block.num !== 0) return { kind: 'fail', reason: `the first block of the response is Block2 ${block.num}` };
    if (!block.more) return { kind: 'done', response };
    const announced = readSize(response, OptionNumber.SIZE2);
    if (announced !== undefined && announced > this.maxBodyBytes) {
      return { kind: 'fail', reason: `the response body (Size2 ${announced}) exceeds ${this.maxBodyBytes} bytes` };
    }
    if (response.payload.length !== blockSize(block.szx)) {
      return {
        kind: 'fail',
        reason: `Block2 0 carries ${response.payload.length} bytes in ${blockSize(block.szx)}-byte blocks`,
      };
    }
    this.block2 = { first: response, chunks: [response.payload], received: response.payload.length, num: 0 };
    return this.requestBlock2(block.szx);
  }

  private nextBlock2(response: CoapMessage): TransferStep {
    const state = this.block2 as Block2State;
    const expected = state.num + 1;
    if (!isSuccessCode(response.code)) {
      return {
        kind: 'fail',
        reason: `the device answered the GET of Block2 ${expected} with ${formatCode(response.code)}`,
      };
    }
    const block = readBlock(response, OptionNumber.BLOCK2);
    if (typeof block !== 'object')
      return { kind: 'fail', reason: block ?? `the answer for Block2 ${expected} has no Block2` };
    const size = blockSize(block.szx);
    if (block.num * size !== state.received) {
      return {
        kind: 'fail',
        reason: `Block2 ${block.num} of ${size} bytes does not follow the ${state.received} bytes taken`,
      };
    }
    if (block.more ? response.payload.length !== size : response.payload.length > size) {
      return {
        kind: 'fail',
        reason: `Block2 ${block.num} carries ${response.payload.length} bytes in ${size}-byte blocks`,
      };
    }
    if (
      !sameOption(state.first, response, OptionNumber.ETAG) ||
      !sameOption(state.first, response, OptionNumber.CONTENT_FORMAT)
    ) {
      return { kind: 'fail', reason: `the representation changed at Block2 ${block.num} (ETag or Content-Format)` };
    }
    state.chunks.push(response.payload);
    state.received += response.payload.length;
    state.num = block.num;
    if (state.received > this.maxBodyBytes) {
      return { kind: 'fail', reason: `the response body exceeds ${this.maxBodyBytes} bytes` };
    }
    if (block.more) return this.requestBlock2(block.szx);
    const { first } = state;
    return {
      kind: 'done',
      response: {
        ...first,
        options: withoutOptions(first.options, [OptionNumber.BLOCK2, OptionNumber.SIZE2]),
        payload: Buffer.concat(state.chunks, state.received),
      },
    };
  }

  private requestBlock2(szx: number): TransferStep {
    const state = this.block2 as Block2State;
    const num = state.received / blockSize(szx);
    if (!Number.isInteger(num) || num > MAX_BLOCK_NUM) {
      return {
        kind: 'fail',
        reason: `no Block2 number follows ${state.received} bytes in ${blockSize(szx)}-byte blocks`,
      };
    }
    const options = withoutOptions(this.request.options, [
      OptionNumber.OBSERVE,
      OptionNumber.BLOCK1,
      OptionNumber.BLOCK2,
      OptionNumber.SIZE1,
    ]);
    options.push(blockOption(OptionNumber.BLOCK2, { num, more: false, szx }));
    return { kind: 'send', request: { code: Code.GET, options } };
  }
}
