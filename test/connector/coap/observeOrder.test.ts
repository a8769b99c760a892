import { isNewerNotification } from '../../../connector/coap/observeOrder';

describe('RFC 7641 §3.4 notification order', () => {
  const at = (sequence: number, arrivedAt = 0) => ({ sequence, arrivedAt });

  it('takes a higher number within half the space as newer, an equal or lower one as older', () => {
    expect(isNewerNotification(at(10), 11, 1)).toBe(true);
    expect(isNewerNotification(at(10), 10, 1)).toBe(false);
    expect(isNewerNotification(at(10), 9, 1)).toBe(false);
    expect(isNewerNotification(at(0), 2 ** 23 - 1, 1)).toBe(true);
    expect(isNewerNotification(at(0), 2 ** 23 + 1, 1)).toBe(false);
  });

  it('wraps at 2^24', () => {
    expect(isNewerNotification(at(2 ** 24 - 1), 0, 1)).toBe(true);
    expect(isNewerNotification(at(2 ** 24 - 5), 3, 1)).toBe(true);
    expect(isNewerNotification(at(3), 2 ** 24 - 5, 1)).toBe(false);
  });

  it('takes anything arriving more than 128 s after the last one as newer', () => {
    expect(isNewerNotification(at(100, 0), 5, 128)).toBe(false);
    expect(isNewerNotification(at(100, 0), 5, 129)).toBe(true);
  });
});
