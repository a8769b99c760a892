import { LocalStack } from '../../local/localStack';

export default async function globalTeardown(): Promise<void> {
  const stack = (globalThis as { __LWM2M_STACK__?: LocalStack }).__LWM2M_STACK__;
  await stack?.stop();
}
