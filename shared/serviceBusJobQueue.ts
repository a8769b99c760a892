/**
 * JobQueue over one long-lived `@azure/service-bus` sender (created by the composition root).
 */
import { ServiceBusMessage, ServiceBusSender } from '@azure/service-bus';
import { JobMessage } from './job';
import { JobQueue } from './jobQueue';

/** The Service Bus message of a job: JSON body, messageId = jobId, sessionId = deviceId, subject = job type. */
export function toServiceBusMessage(message: JobMessage, messageId = message.jobId): ServiceBusMessage {
  return {
    body: message,
    contentType: 'application/json',
    messageId,
    sessionId: message.deviceId,
    subject: message.type,
  };
}

export class ServiceBusJobQueue implements JobQueue {
  constructor(private readonly sender: ServiceBusSender) {}

  async send(message: JobMessage, options: { messageId?: string } = {}): Promise<void> {
    await this.sender.sendMessages(toServiceBusMessage(message, options.messageId));
  }
}
