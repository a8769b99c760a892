import { JobMessage } from './job';

/**
 * Where jobs go to be run: the session-enabled Service Bus queue `device-jobs`. Contract: a message is sent with
 * messageId = jobId (the queue drops a second copy within its duplicate-detection window) and sessionId =
 * deviceId (one device's jobs run one at a time, in the order they were sent).
 */
export interface JobQueue {
  /**
   * `messageId` replaces the jobId as the message id: a job's wake message (it ran before, so a copy under its jobId
   * could still be dropped as a duplicate; see shared/waitingJobs.ts).
   */
  send(message: JobMessage, options?: { messageId?: string }): Promise<void>;
}
