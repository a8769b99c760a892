import { InvocationContext, app } from '@azure/functions';
import { JOBS_QUEUE, SERVICE_BUS_CONNECTION } from '../shared/constants';
import { JobDelivery, runDeviceJob } from '../shared/runDeviceJob';
import { deviceJobDependencies } from './index';

/**
 * Queue `device-jobs` (sessions: one device's jobs one at a time, in order): runs one delivery of a job.
 * Returning completes the message; a throw abandons it (Service Bus redelivers); a `JobMessageDeadLetter` asks the
 * host to dead-letter it (see shared/runDeviceJob.ts for the contract).
 */
export async function runDeviceJobHandler(message: unknown, context: InvocationContext): Promise<void> {
  const delivery = jobDelivery(context.triggerMetadata);
  const outcome = await runDeviceJob(await deviceJobDependencies(), message, delivery);
  const { job } = outcome;
  const detail = job.error ? ` ${job.error.code}: ${job.error.message}` : '';
  context.log(`Job ${job.id} (${job.type} on ${job.deviceId}) ${outcome.action}: ${job.status}${detail}`);
}

/** The delivery as Azure's trigger metadata gives it (`DeliveryCount` is a number; some hosts send a string). */
export function jobDelivery(metadata: Record<string, unknown> | undefined): JobDelivery {
  const count = Number(metadata?.deliveryCount ?? 1);
  return {
    deliveryCount: Number.isInteger(count) && count >= 1 ? count : 1,
    messageId: typeof metadata?.messageId === 'string' ? metadata.messageId : undefined,
  };
}

app.serviceBusQueue('runDeviceJob', {
  connection: SERVICE_BUS_CONNECTION,
  queueName: JOBS_QUEUE,
  isSessionsEnabled: true,
  handler: runDeviceJobHandler,
});
