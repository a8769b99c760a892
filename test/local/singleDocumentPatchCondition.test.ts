/**
 * Conditional patches on the local Cosmos server: the predicate is evaluated on the one document, string literals are
 * parameters of a compiled shape (so one shape with other literals gives other answers), and Cosmos's answers (412,
 * 400) are kept.
 */
import { Container } from '@azure/cosmos';
import { predicateShape } from '../../local/singleDocumentPatchCondition';
import { TestCosmos, startTestCosmos } from '../support/localCosmos';

describe('predicateShape', () => {
  it('takes string literals out as parameters', () => {
    expect(predicateShape('c', `c.a = "x'y" AND c.b < 'say "hi"' OR c.d = ""`)).toEqual({
      text: 'SELECT * FROM c WHERE c.a = @__literal0 AND c.b < @__literal1 OR c.d = @__literal2',
      parameters: [
        { name: '@__literal0', value: "x'y" },
        { name: '@__literal1', value: 'say "hi"' },
        { name: '@__literal2', value: '' },
      ],
    });
  });

  it('leaves a predicate without literals as it is', () => {
    expect(predicateShape('r', 'r.n > 3 AND IS_DEFINED(r.x)')).toEqual({
      text: 'SELECT * FROM r WHERE r.n > 3 AND IS_DEFINED(r.x)',
      parameters: [],
    });
  });

  it('gives up on escapes and comments, which could pair the quotes wrongly', () => {
    expect(predicateShape('c', 'c.s = "a\\"b" OR c.b = "q"')).toBeUndefined();
    expect(predicateShape('c', "c.a = 1 -- don't\nAND c.b = 'y'")).toBeUndefined();
  });
});

describe('conditional patch on the local Cosmos server', () => {
  let cosmos: TestCosmos;
  let container: Container;

  beforeAll(async () => {
    cosmos = await startTestCosmos();
    const { database } = await cosmos.client.databases.createIfNotExists({ id: 'patch-condition-test' });
    ({ container } = await database.containers.createIfNotExists({
      id: 'docs',
      partitionKey: { paths: ['/deviceId'] },
    }));
    await container.items.upsert({ id: 'd1', deviceId: 'd1', time: '2026-01-02T00:00:00.000Z', n: 0 });
  });
  afterAll(() => cosmos.close());

  const patch = (condition: string) =>
    container
      .item('d1', 'd1')
      .patch({ condition, operations: [{ op: 'incr', path: '/n', value: 1 }] })
      .then(
        ({ resource }) => ({ status: 200, n: (resource as { n: number }).n }),
        (error: { code?: number }) => ({ status: error.code }),
      );

  it('answers each literal of one shape by its own value', async () => {
    const before = (await container.item('d1', 'd1').read<{ n: number }>()).resource?.n ?? 0;
    expect(await patch('FROM c\nWHERE c.time < "2026-01-03T00:00:00.000Z"')).toEqual({ status: 200, n: before + 1 });
    expect(await patch('FROM c\nWHERE c.time < "2026-01-01T00:00:00.000Z"')).toEqual({ status: 412 });
    expect(await patch('FROM c\nWHERE c.time < "2026-01-04T00:00:00.000Z"')).toEqual({ status: 200, n: before + 2 });
  });

  it('evaluates camelCase paths, brackets and functions as Cosmos does', async () => {
    expect(
      await patch(`FROM c\nWHERE c["time"] = "2026-01-02T00:00:00.000Z" AND IS_DEFINED(c.deviceId)`),
    ).toMatchObject({ status: 200 });
    expect(await patch('FROM c\nWHERE NOT IS_DEFINED(c.deviceId)')).toEqual({ status: 412 });
  });

  it('evaluates a predicate with escapes or a comment as written', async () => {
    expect(await patch("FROM c\nWHERE c.deviceId = 'd\\u0031' -- it's d1\nAND c.time > ''")).toMatchObject({
      status: 200,
    });
    expect(await patch("FROM c\nWHERE c.deviceId = 'd1' -- don't\nAND c.deviceId = 'x'")).toEqual({ status: 412 });
  });

  it('answers 400 to a predicate that does not parse', async () => {
    expect(await patch('FROM c\nWHERE c.time <')).toEqual({ status: 400 });
  });
});
