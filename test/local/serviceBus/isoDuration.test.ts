import { parseIsoDuration } from '../../../local/serviceBus/isoDuration';

test.each([
  ['PT1M', 60_000],
  ['PT10M', 600_000],
  ['PT30S', 30_000],
  ['PT0.5S', 500],
  ['PT1H30M', 5_400_000],
  ['P14D', 14 * 86_400_000],
  ['P1DT2H', 26 * 3_600_000],
])('%s is %d ms', (text, ms) => {
  expect(parseIsoDuration(text)).toBe(ms);
});

test.each(['', 'P', 'PT', '1M', 'P1M', 'P1Y', 'PT1M ', '60'])('%p is refused with a message naming it', (text) => {
  expect(() => parseIsoDuration(text)).toThrow(`'${text}' is not an ISO-8601 duration`);
});
