/**
 * Block-wise transfer (RFC 7959) without sockets: option values, Block1 reassembly with its refusals, and the
 * outgoing transfer state machine (Block1 out, Block2 in).
 */
import { Block1Reassembler, OutgoingTransfer, blockOption, readBlock } from '../../../connector/coap/blockwise';
import {
  CoapMessage,
  CoapOption,
  Code,
  MessageType,
  OptionNumber,
  readUintOption,
  stringOption,
  uintOption,
} from '../../../connector/coap/coapMessage';

const message = (code: number, options: CoapOption[], payload = Buffer.alloc(0)): CoapMessage => ({
  type: MessageType.CON,
  code,
  messageId: 1,
  token: Buffer.from([1, 2, 3, 4]),
  options,
  payload,
});
const block1 = (num: number, more: boolean, szx: number) => blockOption(OptionNumber.BLOCK1, { num, more, szx });
const block2 = (num: number, more: boolean, szx: number) => blockOption(OptionNumber.BLOCK2, { num, more, szx });
const rd = [stringOption(OptionNumber.URI_PATH, 'rd'), stringOption(OptionNumber.URI_QUERY, 'ep=dev-1')];
const limits = { maxBodyBytes: 1024, maxReassemblies: 4, maxPerPeer: 2, lifetimeMs: 1000 };

describe('block options (RFC 7959 §2.2)', () => {
  it('encode and decode NUM, M and SZX in 0-3 bytes', () => {
    for (const block of [
      { num: 0, more: false, szx: 0 },
      { num: 1, more: true, szx: 2 },
      { num: 4095, more: true, szx: 6 },
      { num: 2 ** 20 - 1, more: false, szx: 6 },
    ]) {
      const option = blockOption(OptionNumber.BLOCK2, block);
      expect(option.value.length).toBeLessThanOrEqual(3);
      expect(readBlock(message(Code.CONTENT, [option]), OptionNumber.BLOCK2)).toEqual(block);
    }
    expect(blockOption(OptionNumber.BLOCK1, { num: 0, more: false, szx: 0 }).value.length).toBe(0);
  });

  it('refuse a value longer than 3 bytes (NUM overflow) and the reserved SZX 7', () => {
    const long = { number: OptionNumber.BLOCK2, value: Buffer.from([0xff, 0xff, 0xff, 0xfe]) };
    expect(readBlock(message(Code.CONTENT, [long]), OptionNumber.BLOCK2)).toMatch(/at most 3/);
    const bert = { number: OptionNumber.BLOCK2, value: Buffer.from([0x17]) };
    expect(readBlock(message(Code.CONTENT, [bert]), OptionNumber.BLOCK2)).toMatch(/reserved SZX 7/);
    expect(readBlock(message(Code.CONTENT, []), OptionNumber.BLOCK2)).toBeUndefined();
  });
});

describe('Block1 reassembly (server side)', () => {
  const body = Buffer.from('x'.repeat(150));
  const blockOf = (num: number, szx = 2, options = rd) => {
    const size = 16 << szx;
    const payload = body.subarray(num * size, (num + 1) * size);
    return message(Code.POST, [...options, block1(num, (num + 1) * size < body.length, szx)], payload);
  };

  it('answers 2.31 Continue per block and hands over the whole body once, without the block options', () => {
    const reassembler = new Block1Reassembler(limits);
    for (const num of [0, 1]) {
      const outcome = reassembler.take(blockOf(num), 'peer', 0);
      expect(outcome).toMatchObject({ kind: 'answer', response: { code: Code.CONTINUE } });
      if (outcome.kind === 'answer') {
        expect(readBlock(message(Code.CONTINUE, outcome.response.options ?? []), OptionNumber.BLOCK1)).toEqual({
          num,
          more: true,
          szx: 2,
        });
      }
    }
    const outcome = reassembler.take(blockOf(2), 'peer', 0);
    expect(outcome.kind).toBe('whole');
    if (outcome.kind !== 'whole') return;
    expect(outcome.request.payload.toString()).toBe(body.toString());
    expect(outcome.request.options.map((o) => o.number)).toEqual(rd.map((o) => o.number));
    expect(readBlock(message(Code.CHANGED, [outcome.echo as CoapOption]), OptionNumber.BLOCK1)).toEqual({
      num: 2,
      more: false,
      szx: 2,
    });
    expect(reassembler.inProgress).toBe(0);
  });

  it('passes a request without Block1 through untouched', () => {
    const request = message(Code.POST, rd, body);
    expect(new Block1Reassembler(limits).take(request, 'peer', 0)).toEqual({ kind: 'whole', request });
  });

  it('answers 4.08 to a block that continues nothing, or skips one', () => {
    const reassembler = new Block1Reassembler(limits);
    expect(reassembler.take(blockOf(1), 'peer', 0)).toMatchObject({
      kind: 'answer',
      response: { code: Code.REQUEST_ENTITY_INCOMPLETE },
    });
    reassembler.take(blockOf(0), 'peer', 0);
    expect(reassembler.take(blockOf(2), 'peer', 0)).toMatchObject({
      response: { code: Code.REQUEST_ENTITY_INCOMPLETE },
    });
    // Another peer, or another URI, continues nothing either.
    reassembler.take(blockOf(0), 'peer', 0);
    expect(reassembler.take(blockOf(1), 'other', 0)).toMatchObject({
      response: { code: Code.REQUEST_ENTITY_INCOMPLETE },
    });
    expect(reassembler.take(blockOf(1, 2, [stringOption(OptionNumber.URI_PATH, 'rd')]), 'peer', 0)).toMatchObject({
      response: { code: Code.REQUEST_ENTITY_INCOMPLETE },
    });
  });

  it('answers 4.13 with Size1 when the body (or its announced Size1, or a huge NUM) exceeds the limit', () => {
    const reassembler = new Block1Reassembler(limits);
    const tooLarge = (outcome: ReturnType<Block1Reassembler['take']>) => {
      expect(outcome).toMatchObject({ kind: 'answer', response: { code: Code.REQUEST_ENTITY_TOO_LARGE } });
      if (outcome.kind === 'answer') {
        expect(readUintOption(message(0, outcome.response.options ?? []), OptionNumber.SIZE1)).toBe(1024);
      }
    };
    tooLarge(
      reassembler.take(
        message(Code.POST, [...rd, block1(0, true, 6), uintOption(OptionNumber.SIZE1, 5000)], Buffer.alloc(1024)),
        'peer',
        0,
      ),
    );
    tooLarge(
      reassembler.take(message(Code.POST, [...rd, block1(2 ** 20 - 1, true, 6)], Buffer.alloc(1024)), 'peer', 0),
    );
    reassembler.take(message(Code.POST, [...rd, block1(0, true, 6)], Buffer.alloc(1024)), 'peer', 0);
    tooLarge(reassembler.take(message(Code.POST, [...rd, block1(1, false, 6)], Buffer.alloc(10)), 'peer', 0));
    expect(reassembler.inProgress).toBe(0);
  });

  it('answers 4.00 to SZX 7, an over-long option and sizes that do not add up', () => {
    const reassembler = new Block1Reassembler(limits);
    const bad = [
      message(Code.POST, [...rd, { number: OptionNumber.BLOCK1, value: Buffer.from([0x0f]) }], Buffer.alloc(16)),
      message(Code.POST, [...rd, { number: OptionNumber.BLOCK1, value: Buffer.from([1, 2, 3, 4]) }], Buffer.alloc(16)),
      message(Code.POST, [...rd, block1(0, true, 2)], Buffer.alloc(10)),
      message(Code.POST, [...rd, block1(0, false, 0)], Buffer.alloc(17)),
    ];
    for (const request of bad) {
      expect(reassembler.take(request, 'peer', 0)).toMatchObject({ response: { code: Code.BAD_REQUEST } });
    }
  });

  it('bounds reassemblies per peer and in all, and forgets idle ones after their lifetime', () => {
    const reassembler = new Block1Reassembler(limits);
    const start = (peer: string, ep: string, now = 0) =>
      reassembler.take(
        blockOf(0, 2, [stringOption(OptionNumber.URI_PATH, 'rd'), stringOption(OptionNumber.URI_QUERY, ep)]),
        peer,
        now,
      );
    for (const ep of ['a', 'b', 'c']) start('p1', ep);
    expect(reassembler.inProgress).toBe(2); // the peer's oldest went
    start('p2', 'a');
    start('p3', 'a');
    expect(reassembler.inProgress).toBe(4);
    expect(start('p4', 'a')).toMatchObject({ response: { code: Code.SERVICE_UNAVAILABLE } });
    expect(start('p4', 'a', 1001)).toMatchObject({ response: { code: Code.CONTINUE } });
    expect(reassembler.inProgress).toBe(1);
  });
});

describe('outgoing block-wise transfer (client side)', () => {
  const uri = [stringOption(OptionNumber.URI_PATH, '3'), stringOption(OptionNumber.URI_PATH, '0')];
  const body = Buffer.from(Array.from({ length: 300 }, (_, i) => 65 + (i % 26)));
  const blockResponse = (num: number, szx: number, extra: CoapOption[] = []) => {
    const size = 16 << szx;
    const more = (num + 1) * size < body.length;
    return message(
      Code.CONTENT,
      [uintOption(OptionNumber.CONTENT_FORMAT, 0), block2(num, more, szx), ...extra],
      body.subarray(num * size, (num + 1) * size),
    );
  };

  it('fetches the remaining Block2 blocks with GETs without Observe and yields the whole body', () => {
    const transfer = new OutgoingTransfer(
      { code: Code.GET, options: [...uri, uintOption(OptionNumber.OBSERVE, 0)] },
      64 * 1024,
    );
    let step = transfer.next(blockResponse(0, 2, [uintOption(OptionNumber.OBSERVE, 7)]));
    for (let num = 1; step.kind === 'send'; num++) {
      expect(step.request.code).toBe(Code.GET);
      expect(step.request.options.some((o) => o.number === OptionNumber.OBSERVE)).toBe(false);
      expect(readBlock(message(Code.GET, step.request.options), OptionNumber.BLOCK2)).toEqual({
        num,
        more: false,
        szx: 2,
      });
      step = transfer.next(blockResponse(num, 2));
    }
    expect(step.kind).toBe('done');
    if (step.kind !== 'done') return;
    expect(step.response.payload.equals(body)).toBe(true);
    expect(readUintOption(step.response, OptionNumber.OBSERVE)).toBe(7);
    expect(step.response.options.some((o) => o.number === OptionNumber.BLOCK2)).toBe(false);
  });

  it('fails on an error block, a changed ETag, a block that does not follow, or a body past the limit', () => {
    const etag = (tag: number) => ({ number: OptionNumber.ETAG, value: Buffer.from([tag]) });
    const cases: [CoapMessage, CoapMessage, RegExp][] = [
      [blockResponse(0, 2), message(Code.NOT_FOUND, []), /answered the GET of Block2 1 with 4.04/],
      [blockResponse(0, 2, [etag(1)]), blockResponse(1, 2, [etag(2)]), /representation changed/],
      [blockResponse(0, 2), blockResponse(2, 2), /does not follow/],
      [blockResponse(0, 2), message(Code.CONTENT, [block2(1, true, 2)], Buffer.alloc(10)), /10 bytes in 64-byte/],
    ];
    for (const [first, second, reason] of cases) {
      const transfer = new OutgoingTransfer({ code: Code.GET, options: uri }, 64 * 1024);
      expect(transfer.next(first).kind).toBe('send');
      const step = transfer.next(second);
      expect(step).toMatchObject({ kind: 'fail' });
      if (step.kind === 'fail') expect(step.reason).toMatch(reason);
    }
    const small = new OutgoingTransfer({ code: Code.GET, options: uri }, 100);
    expect(small.next(blockResponse(0, 2, [uintOption(OptionNumber.SIZE2, 300)]))).toMatchObject({ kind: 'fail' });
    const noSize = new OutgoingTransfer({ code: Code.GET, options: uri }, 100);
    expect(noSize.next(blockResponse(0, 2)).kind).toBe('send');
    expect(noSize.next(blockResponse(1, 2))).toMatchObject({
      kind: 'fail',
      reason: expect.stringMatching(/exceeds 100/),
    });
  });

  it('sends a large payload as Block1 and follows the smaller block size the device asks for', () => {
    const transfer = new OutgoingTransfer({ code: Code.PUT, options: uri, payload: body }, 64 * 1024);
    const first = transfer.start(3); // 128-byte blocks
    expect(first.payload?.length).toBe(128);
    expect(readUintOption(message(Code.PUT, first.options), OptionNumber.SIZE1)).toBe(300);
    // The device takes the first 128 bytes but asks for 64-byte blocks from now on.
    let step = transfer.next(message(Code.CONTINUE, [block1(0, true, 2)]));
    const sent: Buffer[] = [first.payload as Buffer];
    while (step.kind === 'send') {
      sent.push(step.request.payload as Buffer);
      const block = readBlock(message(Code.PUT, step.request.options), OptionNumber.BLOCK1);
      if (typeof block !== 'object') throw new Error('no Block1');
      expect(block.szx).toBe(2);
      step = transfer.next(message(block.more ? Code.CONTINUE : Code.CHANGED, [block1(block.num, block.more, 2)]));
    }
    expect(step).toMatchObject({ kind: 'done', response: { code: Code.CHANGED } });
    expect(Buffer.concat(sent).equals(body)).toBe(true);
    expect(transfer.block1Szx).toBe(2);
  });

  it('turns a plain request refused with 4.13 and a preferred Block1 size into blocks', () => {
    const transfer = new OutgoingTransfer({ code: Code.PUT, options: uri, payload: body }, 64 * 1024);
    expect(transfer.start(6).payload?.length).toBe(300);
    const step = transfer.next(message(Code.REQUEST_ENTITY_TOO_LARGE, [block1(0, false, 2)]));
    expect(step.kind).toBe('send');
    if (step.kind === 'send') expect(step.request.payload?.length).toBe(64);
    // Without a preferred size, the 4.13 is the answer.
    const plain = new OutgoingTransfer({ code: Code.PUT, options: uri, payload: body }, 64 * 1024);
    plain.start(6);
    expect(plain.next(message(Code.REQUEST_ENTITY_TOO_LARGE, []))).toMatchObject({ kind: 'done' });
  });
});
