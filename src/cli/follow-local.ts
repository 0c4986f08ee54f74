import type { EventFilter } from '../domain/activity-repository.js';
import { ActivityError, isActivityError } from '../domain/errors.js';
import type { ActivityEvent } from '../domain/event.js';
import type { StreamHub } from '../stream/stream-hub.js';
import type { Subscription } from '../stream/subscription.js';
import { pauseUnlessStopped, retryDelayMs } from './retry-schedule.js';

export interface FollowLocalOptions {
  hub: StreamHub;
  tenantId: string;
  filter: EventFilter;
  /** The seq the backlog printed up to: the stream starts after it. */
  afterSeq: number;
  print(event: ActivityEvent): Promise<void>;
  stop: Promise<void>;
  /** Told of each failure it follows through (the database away). */
  onRetry(error: unknown): void;
}

/**
 * `tail` on the database: the live stream from `afterSeq`, subscribed again from the
 * last event printed whenever a read of it fails, so an outage costs only delay.
 * Resolves with the number of events printed once `stop` resolves.
 */
export async function followLocal(options: FollowLocalOptions): Promise<number> {
  let stopped = false;
  let current: Subscription | undefined;
  void options.stop.then(() => {
    stopped = true;
    current?.close('client');
  });
  let position = options.afterSeq;
  let delivered = 0;
  let failuresInARow = 0;
  while (!stopped) {
    current = undefined;
    try {
      current = await options.hub.subscribe(options.tenantId, options.filter, position);
      if (stopped) current.close('client');
      for await (const event of current) {
        await options.print(event);
        delivered++;
        position = event.seq;
        failuresInARow = 0;
      }
      if (current.closeReason === 'slow') {
        throw new ActivityError('INTERNAL', 'the output fell too far behind the stream');
      }
      if (current.closeReason !== 'error') break;
    } catch (error) {
      // Only an outage is followed through; anything else is the command's error.
      if (!isActivityError(error) || error.exitCode !== 3) throw error;
      options.onRetry(error);
    } finally {
      current?.release();
    }
    await pauseUnlessStopped(retryDelayMs(failuresInARow++), options.stop);
  }
  return delivered;
}
