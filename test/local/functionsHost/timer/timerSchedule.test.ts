import {
  NcrontabSchedule,
  parseTimerSchedule,
  shortestInterval,
} from '../../../../local/functionsHost/timer/timerSchedule';

const at = (iso: string): number => Date.parse(iso);
const iso = (ms: number): string => new Date(ms).toISOString();

function occurrences(expression: string, fromIso: string, count: number): string[] {
  const schedule = parseTimerSchedule(expression);
  const result: string[] = [];
  let time = at(fromIso);
  for (let index = 0; index < count; index++) {
    time = schedule.next(time);
    result.push(iso(time));
  }
  return result;
}

describe('NCRONTAB timer schedules', () => {
  it('fires every minute at second 0 with "0 * * * * *"', () => {
    expect(occurrences('0 * * * * *', '2026-01-01T10:00:00.000Z', 3)).toEqual([
      '2026-01-01T10:01:00.000Z',
      '2026-01-01T10:02:00.000Z',
      '2026-01-01T10:03:00.000Z',
    ]);
  });

  it('returns the next occurrence strictly after the given time', () => {
    expect(occurrences('*/15 * * * * *', '2026-01-01T10:00:15.000Z', 2)).toEqual([
      '2026-01-01T10:00:30.000Z',
      '2026-01-01T10:00:45.000Z',
    ]);
    expect(occurrences('*/15 * * * * *', '2026-01-01T10:00:14.999Z', 1)).toEqual(['2026-01-01T10:00:15.000Z']);
  });

  it('handles ranges, lists, steps and a/n (from a to the maximum)', () => {
    expect(occurrences('0 0 9-17/4 * * *', '2026-01-01T00:00:00Z', 4)).toEqual([
      '2026-01-01T09:00:00.000Z',
      '2026-01-01T13:00:00.000Z',
      '2026-01-01T17:00:00.000Z',
      '2026-01-02T09:00:00.000Z',
    ]);
    expect(occurrences('5,10 30 1 * * *', '2026-01-01T00:00:00Z', 3)).toEqual([
      '2026-01-01T01:30:05.000Z',
      '2026-01-01T01:30:10.000Z',
      '2026-01-02T01:30:05.000Z',
    ]);
    expect(occurrences('50/5 0 0 * * *', '2026-01-01T00:00:00Z', 3)).toEqual([
      '2026-01-01T00:00:50.000Z',
      '2026-01-01T00:00:55.000Z',
      '2026-01-02T00:00:50.000Z',
    ]);
  });

  it('accepts month and day names by prefix, day 0 = Sunday', () => {
    // 2026-01-04 is a Sunday.
    expect(occurrences('0 0 12 * * Sun', '2026-01-01T00:00:00Z', 2)).toEqual([
      '2026-01-04T12:00:00.000Z',
      '2026-01-11T12:00:00.000Z',
    ]);
    expect(occurrences('0 0 0 1 feb,JUNE *', '2026-01-01T00:00:00Z', 2)).toEqual([
      '2026-02-01T00:00:00.000Z',
      '2026-06-01T00:00:00.000Z',
    ]);
    expect(occurrences('0 0 8 * * 1-5', '2026-01-02T09:00:00Z', 2)).toEqual([
      '2026-01-05T08:00:00.000Z',
      '2026-01-06T08:00:00.000Z',
    ]);
  });

  it('requires both day-of-month and day-of-week when both are restricted (NCrontab, not Vixie cron)', () => {
    // The 13th that is also a Friday: 2026-02-13, then 2026-03-13.
    expect(occurrences('0 0 0 13 * Fri', '2026-01-01T00:00:00Z', 2)).toEqual([
      '2026-02-13T00:00:00.000Z',
      '2026-03-13T00:00:00.000Z',
    ]);
  });

  it('skips days a month does not have and finds leap days', () => {
    expect(occurrences('0 0 0 31 * *', '2026-01-31T00:00:00Z', 2)).toEqual([
      '2026-03-31T00:00:00.000Z',
      '2026-05-31T00:00:00.000Z',
    ]);
    expect(occurrences('0 0 0 29 2 *', '2026-01-01T00:00:00Z', 1)).toEqual(['2028-02-29T00:00:00.000Z']);
  });

  it('treats a TimeSpan as a fixed interval', () => {
    const schedule = parseTimerSchedule('00:05:00');
    expect(schedule.next(at('2026-01-01T10:00:07Z'))).toBe(at('2026-01-01T10:05:07Z'));
  });

  it('measures the shortest interval between occurrences', () => {
    expect(shortestInterval(parseTimerSchedule('*/10 * * * * *'), at('2026-01-01T00:00:00Z'))).toBe(10_000);
    expect(shortestInterval(parseTimerSchedule('0 */5 * * * *'), at('2026-01-01T00:00:00Z'))).toBe(300_000);
  });

  it('rejects bad expressions with errors that name the field', () => {
    expect(() => NcrontabSchedule.parse('* * * * *')).toThrow(/has 5 field\(s\); NCRONTAB needs 6/);
    expect(() => NcrontabSchedule.parse('60 * * * * *')).toThrow(/second field "60" has 60 outside 0-59/);
    expect(() => NcrontabSchedule.parse('0 0 0 * * 7')).toThrow(/day-of-week field "7"/);
    expect(() => NcrontabSchedule.parse('0 0 0 * Foo *')).toThrow(/month field "Foo".*not a number or a name/);
    expect(() => NcrontabSchedule.parse('*/0 * * * * *')).toThrow(/invalid step "0"/);
    expect(() => NcrontabSchedule.parse('0 0 0 10-5 * *')).toThrow(/runs backwards/);
    expect(() => NcrontabSchedule.parse('0 0 0 L * *')).toThrow(/day field "L"/);
    expect(() => NcrontabSchedule.parse('0 0 0 30 2 *')).toThrow(/never fires/);
    expect(() => parseTimerSchedule('00:00:00')).toThrow(/not a valid positive TimeSpan/);
  });
});
