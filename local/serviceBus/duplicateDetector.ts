import type { Clock } from './clock';

/**
 * Service Bus duplicate detection: a messageId seen within the window is a duplicate. The window runs from the
 * first time the id was seen; a duplicate does not extend it. Memory follows the ids seen within one window.
 */
export class DuplicateDetector {
  /** messageId key -> epoch ms first seen; insertion order is time order. */
  private readonly seenAt = new Map<string, number>();

  constructor(
    private readonly windowMs: number,
    private readonly clock: Clock,
  ) {}

  /** True if `messageIdKey` was seen within the window; otherwise records it and returns false. */
  isDuplicate(messageIdKey: string): boolean {
    const now = this.clock.now();
    for (const [key, firstSeen] of this.seenAt) {
      if (firstSeen > now - this.windowMs) break;
      this.seenAt.delete(key);
    }
    if (this.seenAt.has(messageIdKey)) return true;
    this.seenAt.set(messageIdKey, now);
    return false;
  }
}
