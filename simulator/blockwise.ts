/**
 * Block-wise transfer (RFC 7959) for a simulated device with a small buffer (`blockSize`): responses and
 * notifications larger than a block go as Block2 blocks (with an ETag, so the server can tell when the value changed
 * between blocks), and a request payload larger than a block (the Register's links) goes as Block1 blocks.
 *
 * A later Block2 block is served by answering the server's GET again and cutting the block from the fresh answer
 * (the device keeps no state per transfer); a value that changed meanwhile has another ETag.
 */
import { createHash } from 'crypto';
import {
  CoapEndpoint,
  CoapResponse,
  IncomingRequest,
  NamedOption,
  NotificationMessage,
  OutgoingRequest,
  OutgoingResponse,
  RemoteAddress,
  decodeUint,
  encodeUint,
} from './coapEndpoint';
import { MethodCode } from './protocol';

/** 2.31 Continue (RFC 7959 §2.9.1). */
const CONTINUE = '2.31';
/** Block sizes are 2^(SZX + 4), SZX 0-6 (RFC 7959 §2.2). */
const MIN_BLOCK_SIZE = 16;
const MAX_BLOCK_SIZE = 1024;

/** Throws a RangeError unless `size` is a block size (16, 32, ... 1024 bytes). */
export function validateBlockSize(size: number): void {
  if (!Number.isInteger(size) || size < MIN_BLOCK_SIZE || size > MAX_BLOCK_SIZE || (size & (size - 1)) !== 0) {
    throw new RangeError(`blockSize must be a power of two from ${MIN_BLOCK_SIZE} to ${MAX_BLOCK_SIZE}; got ${size}`);
  }
}

function szxOf(size: number): number {
  return Math.log2(size) - 4;
}

function blockOption(name: 'Block1' | 'Block2', num: number, more: boolean, size: number): NamedOption {
  return { name, value: encodeUint(num * 16 + (more ? 8 : 0) + szxOf(size)) };
}

/** A 4-byte ETag of a representation. */
function etagOf(payload: Buffer): NamedOption {
  return { name: 'ETag', value: createHash('sha1').update(payload).digest().subarray(0, 4) };
}

/**
 * The block of `response` the request asks for (its Block2 NUM, 0 without one), at most `blockSize` bytes or the
 * smaller size the request asks for; the response itself when it fits one block and no later block is asked for.
 */
export function block2Response(
  request: IncomingRequest,
  response: OutgoingResponse,
  blockSize: number,
): OutgoingResponse {
  const payload = response.payload;
  const asked = request.block2 === undefined ? undefined : decodeUint(request.block2);
  if (!payload || request.code !== MethodCode.GET || !response.code.startsWith('2.')) return response;
  const size = asked === undefined ? blockSize : Math.min(blockSize, 16 << Math.min(asked & 0x07, 6));
  const num = asked === undefined ? 0 : Math.floor(asked / 16);
  if (payload.length <= size && num === 0) return response;
  if (num * size >= payload.length) return { code: '4.02', payload: Buffer.from(`no block ${num} of ${size} bytes`) };
  const more = (num + 1) * size < payload.length;
  return {
    ...response,
    payload: payload.subarray(num * size, (num + 1) * size),
    extraOptions: [...(response.extraOptions ?? []), blockOption('Block2', num, more, size), etagOf(payload)],
  };
}

/** The first block of a notification larger than `blockSize` (the server GETs the rest, RFC 7959 §3.4). */
export function firstBlockOf(message: NotificationMessage, blockSize: number): NotificationMessage {
  const payload = message.payload;
  if (!payload || payload.length <= blockSize) return message;
  return {
    ...message,
    payload: payload.subarray(0, blockSize),
    extraOptions: [...(message.extraOptions ?? []), blockOption('Block2', 0, true, blockSize), etagOf(payload)],
  };
}

/**
 * Sends `request`, its payload in Block1 blocks of `blockSize` bytes when larger (RFC 7959 §2.5): each block but the
 * last must be answered 2.31 Continue; resolves with the answer to the last block, or to the first that is not 2.31.
 */
export async function requestInBlocks(
  coap: CoapEndpoint,
  server: RemoteAddress,
  request: OutgoingRequest,
  blockSize: number | undefined,
): Promise<CoapResponse> {
  const payload = request.payload;
  if (blockSize === undefined || !payload || payload.length <= blockSize) return coap.request(server, request);
  for (let num = 0; ; num++) {
    const more = (num + 1) * blockSize < payload.length;
    const response = await coap.request(server, {
      ...request,
      payload: payload.subarray(num * blockSize, (num + 1) * blockSize),
      extraOptions: [
        ...(request.extraOptions ?? []),
        blockOption('Block1', num, more, blockSize),
        ...(num === 0 ? [{ name: 'Size1', value: encodeUint(payload.length) }] : []),
      ],
    });
    if (!more || response.code !== CONTINUE) return response;
  }
}
