import { JobMessage } from './job';

/**
 * Where jobs go to be run: the session-enabled Service Bus queue `device-jobs`. Contract: a message is sent with
 * messageId = jobId (the queue drops a second copy within its duplicate-detection window) and sessionId =
 * deviceId (one device's jobs run one at a time, in the order they were sent).
 */
export interface JobQueue {
  send(message: JobMessage): Promise<void>;
}
