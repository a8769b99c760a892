import { isTwinError } from '../../shared/errors';
import { parseComparison, parseTwinQuery, toSql } from '../../shared/twinQuery';

const parse = (query: string) => parseTwinQuery(new URLSearchParams(query));

describe('twin query translation', () => {
  it('turns every filter into parameters, never into query text', () => {
    const hostile = `x' OR 1=1 --`;
    const sql = toSql(
      parse(
        `tag=site:${encodeURIComponent(hostile)}&connectionState=connected&stale=true&where=${encodeURIComponent(
          'deviceProperties.batteryLevel lt 20',
        )}`,
      ),
    );
    expect(sql.query).not.toContain(hostile);
    expect(sql.query).not.toContain('batteryLevel');
    expect(sql.query).not.toContain('site');
    expect(sql.parameters.map((p) => p.value)).toEqual(expect.arrayContaining(['site', hostile, 'batteryLevel', 20]));
    expect(sql.query).toContain('ARRAY_LENGTH(c.staleProperties) > 0');
  });

  it('reads numbers, booleans and quoted strings in comparisons', () => {
    expect(parseComparison('deviceProperties.batteryLevel ge 20').value).toBe(20);
    expect(parseComparison('serviceProperties.vip eq true').value).toBe(true);
    expect(parseComparison('deviceProperties.timezone eq "Europe/Paris"').value).toBe('Europe/Paris');
    expect(parseComparison('deviceProperties.timezone ne Europe/Paris').value).toBe('Europe/Paris');
  });

  it('matches numeric tags by their text form too', () => {
    const sql = toSql(parse('tag=floor:3'));
    expect(sql.parameters.map((p) => p.value)).toEqual(['floor', '3', 3]);
  });

  it('rejects what it cannot translate, naming the field', () => {
    for (const [query, field] of [
      ['where=deviceProperties.reboot eq 1', 'where'],
      ['where=tags.site eq 1', 'where'],
      ['connectionState=maybe', 'connectionState'],
      ['stale=yes', 'stale'],
      ['tag=:x', 'tag'],
      ['order=desc', 'order'],
    ]) {
      let error: unknown;
      try {
        parse(query);
      } catch (e) {
        error = e;
      }
      expect(isTwinError(error, 'InvalidQuery')).toBe(true);
      expect((error as { extensions: { field: string } }).extensions.field).toBe(field);
    }
  });
});
