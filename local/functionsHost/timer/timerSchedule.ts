import { parseTimeSpan } from '../hostSettings';

/** When a timer fires. Times are UTC, in milliseconds since the epoch. */
export interface TimerSchedule {
  /** The first occurrence strictly after `afterMs`. */
  next(afterMs: number): number;
  readonly expression: string;
}

/**
 * Parses a timer trigger's `schedule` as the Functions runtime does: a six-field NCRONTAB expression
 * (`{second} {minute} {hour} {day} {month} {day-of-week}`), or a TimeSpan (`hh:mm:ss`, a fixed interval).
 * Errors name the expression and the field.
 */
export function parseTimerSchedule(expression: string): TimerSchedule {
  const text = expression.trim();
  if (/^\d+(\.\d+)?:\d{1,2}:\d{1,2}/.test(text) && !/\s/.test(text)) {
    const intervalMs = parseTimeSpan(text);
    if (intervalMs === undefined || intervalMs <= 0) {
      throw new Error(`Timer schedule "${expression}" is not a valid positive TimeSpan (hh:mm:ss).`);
    }
    return { expression: text, next: (afterMs) => afterMs + intervalMs };
  }
  return NcrontabSchedule.parse(text);
}

/** The shortest gap between the first few occurrences after `fromMs`; the runtime monitors schedules of 1 min or more. */
export function shortestInterval(schedule: TimerSchedule, fromMs: number, samples = 4): number {
  let previous = schedule.next(fromMs);
  let shortest = Number.POSITIVE_INFINITY;
  for (let index = 0; index < samples; index++) {
    const next = schedule.next(previous);
    shortest = Math.min(shortest, next - previous);
    previous = next;
  }
  return shortest;
}

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  /** Value names, matched case-insensitively by prefix (`Jan`, `mon`), index 0 = `min`. */
  names?: string[];
}

const FIELDS: FieldSpec[] = [
  { name: 'second', min: 0, max: 59 },
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day', min: 1, max: 31 },
  {
    name: 'month',
    min: 1,
    max: 12,
    names: [
      'January',
      'February',
      'March',
      'April',
      'May',
      'June',
      'July',
      'August',
      'September',
      'October',
      'November',
      'December',
    ],
  },
  {
    name: 'day-of-week',
    min: 0,
    max: 6,
    names: ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'],
  },
];

/** How far ahead `next` searches before it declares that a schedule never fires. */
const SEARCH_HORIZON_YEARS = 10;

/**
 * NCRONTAB with seconds, following the NCrontab library the Functions runtime uses: `*`, `a`, `a-b`, lists, steps
 * (`/n` after `*` or a range; `a/n` runs from a to the field's maximum), month and day names; day 0 = Sunday. Unlike Vixie cron,
 * day-of-month and day-of-week must BOTH match when both are restricted (NCrontab checks the weekday after the date).
 * No `L`, `W`, `#` or `?`. Evaluated in UTC (Azure's default time zone).
 */
export class NcrontabSchedule implements TimerSchedule {
  private constructor(
    readonly expression: string,
    /** One membership table per field, indexed by value. */
    private readonly allowed: boolean[][],
  ) {}

  static parse(expression: string): NcrontabSchedule {
    const tokens = expression.trim().split(/\s+/);
    if (tokens.length !== FIELDS.length) {
      throw new Error(
        `Timer schedule "${expression}" has ${tokens.length} field(s); NCRONTAB needs 6: {second} {minute} {hour} {day} {month} {day-of-week}.`,
      );
    }
    const allowed = tokens.map((token, index) => parseField(token, FIELDS[index], expression));
    const schedule = new NcrontabSchedule(expression.trim(), allowed);
    schedule.next(Date.UTC(2000, 0, 1));
    return schedule;
  }

  next(afterMs: number): number {
    const [seconds, minutes, hours, days, months, weekdays] = this.allowed;
    let time = new Date(Math.floor(afterMs / 1000) * 1000 + 1000);
    const horizon = time.getTime() + SEARCH_HORIZON_YEARS * 366 * 24 * 3600 * 1000;
    while (time.getTime() <= horizon) {
      const year = time.getUTCFullYear();
      const month = time.getUTCMonth();
      if (!months[month + 1]) {
        time = new Date(Date.UTC(year, month + 1, 1));
        continue;
      }
      const day = time.getUTCDate();
      if (!days[day] || !weekdays[time.getUTCDay()]) {
        time = new Date(Date.UTC(year, month, day + 1));
        continue;
      }
      const hour = time.getUTCHours();
      if (!hours[hour]) {
        time = new Date(Date.UTC(year, month, day, hour + 1));
        continue;
      }
      const minute = time.getUTCMinutes();
      if (!minutes[minute]) {
        time = new Date(Date.UTC(year, month, day, hour, minute + 1));
        continue;
      }
      const second = time.getUTCSeconds();
      if (!seconds[second]) {
        time = new Date(Date.UTC(year, month, day, hour, minute, second + 1));
        continue;
      }
      return time.getTime();
    }
    throw new Error(
      `Timer schedule "${this.expression}" never fires (no occurrence within ${SEARCH_HORIZON_YEARS} years).`,
    );
  }
}

function parseField(token: string, field: FieldSpec, expression: string): boolean[] {
  const allowed = new Array<boolean>(field.max + 1).fill(false);
  const fail = (why: string): never => {
    throw new Error(`Timer schedule "${expression}": ${field.name} field "${token}" ${why}.`);
  };
  for (const item of token.split(',')) {
    if (item === '') {
      fail('has an empty list item');
    }
    const [rangeText, stepText, extra] = item.split('/');
    if (extra !== undefined) {
      fail('has more than one "/"');
    }
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) === 0) {
        fail(`has an invalid step "${stepText}"`);
      }
      step = Number(stepText);
    }
    let first: number;
    let last: number;
    if (rangeText === '*') {
      first = field.min;
      last = field.max;
    } else if (rangeText.includes('-')) {
      const [from, to] = rangeText.split('-');
      first = parseValue(from, field, fail);
      last = parseValue(to, field, fail);
      if (first > last) {
        fail(`has a range that runs backwards`);
      }
    } else {
      first = parseValue(rangeText, field, fail);
      last = stepText === undefined ? first : field.max;
    }
    for (let value = first; value <= last; value += step) {
      allowed[value] = true;
    }
  }
  return allowed;
}

function parseValue(text: string, field: FieldSpec, fail: (why: string) => never): number {
  if (text === undefined || text === '') {
    return fail('has an empty value');
  }
  if (/^\d+$/.test(text)) {
    const value = Number(text);
    if (value < field.min || value > field.max) {
      fail(`has ${value} outside ${field.min}-${field.max}`);
    }
    return value;
  }
  const index = field.names?.findIndex((name) => name.toLowerCase().startsWith(text.toLowerCase())) ?? -1;
  if (index < 0) {
    return fail(
      field.names
        ? `has "${text}", which is not a number or a name (${field.names.join(', ')})`
        : `has "${text}", which is not a number`,
    );
  }
  return index + field.min;
}
