import {
  MAX_CONTINUATION_LENGTH,
  toContinuationError,
  validateContinuationToken,
} from '../../shared/continuationToken';
import { isTwinError } from '../../shared/errors';

const refusal = (token: string): string | undefined => {
  try {
    validateContinuationToken(token);
    return undefined;
  } catch (error) {
    return isTwinError(error, 'InvalidContinuation') ? String(error.extensions.field) : String(error);
  }
};

describe('continuation token shape', () => {
  it('accepts the tokens Cosmos, its SDKs and the local server hand out', () => {
    const tokens = [
      '+RID:IjI7AKy72+8MAAAAAAAAAA==#RT:1#TRC:1#FPC:AQwAAAAAAAAADQAAAAAAAAA=',
      '-RID:~YVEzAK5GDSwBAAAAAAAAAA==#RT:1#TRC:1#ISV:2#IEO:65567#QCF:8',
      '{"token":"+RID:gAABAIAAAAEDAAAAAAAAAA==#RT:1#TRC:2","range":{"min":"","max":"FF"}}',
      '[{"token":"-RID:~PqxYAKxpJSkCAAAAAAAAAA==#RT:1#TRC:2#ISV:2#IEO:65551","range":{"min":"","max":"FF"}}]',
      '{"compositeToken":{"token":"+RID:x#RT:2","range":{"min":"","max":"FF"}},"orderByItems":[{"item":"a"}]}',
      `+RID:${'A'.repeat(8000)}#RT:1`,
    ];
    for (const token of tokens)
      expect({ token: token.slice(0, 30), refused: refusal(token) }).toEqual({
        token: token.slice(0, 30),
        refused: undefined,
      });
  });

  it('refuses what cannot be a token with InvalidContinuation naming the field', () => {
    const garbage = [
      'garbage',
      'page2',
      '42',
      '"x"',
      'null',
      'true',
      '[]',
      '+RID:',
      'RID:abc',
      '{"token":',
      'x'.repeat(MAX_CONTINUATION_LENGTH + 1),
      `{"t":"${'a'.repeat(MAX_CONTINUATION_LENGTH)}"}`,
    ];
    for (const token of garbage)
      expect({ token: token.slice(0, 30), refused: refusal(token) }).toEqual({
        token: token.slice(0, 30),
        refused: 'continuation',
      });
  });

  it("maps the store's own refusals of a token, and only when a token was given", () => {
    const storeErrors: [unknown, boolean][] = [
      [Object.assign(new Error('BadRequest'), { code: 400 }), true],
      [new SyntaxError('Unexpected token'), true],
      [new Error('Failed to parse continuation token: Unexpected token g'), true],
      [new Error('Invalid continuation token format. Expected token with rangeMappings property.'), true],
      [Object.assign(new Error('Service unavailable'), { code: 503 }), false],
      [new Error('socket hang up'), false],
    ];
    for (const [error, mapped] of storeErrors) {
      expect(isTwinError(toContinuationError(error, '{"token":"+RID:x"}'), 'InvalidContinuation')).toBe(mapped);
      expect(toContinuationError(error, undefined)).toBe(error);
    }
  });
});
