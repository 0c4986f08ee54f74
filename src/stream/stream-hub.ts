import type { ActivityRepository, EventFilter } from '../domain/activity-repository.js';
import { ActivityError } from '../domain/errors.js';
import type { ActivityEvent } from '../domain/event.js';
import { matchesFilter } from '../domain/event-filter.js';
import { Subscription } from './subscription.js';
import type { StreamNotice, StreamTransport } from './transport.js';

export interface StreamHubOptions {
  repository: ActivityRepository;
  transport: StreamTransport;
  /** Open streams per tenant in this process (default 100). */
  maxStreamsPerTenant?: number;
  /** Open streams in this process across tenants (default 10,000): bounds memory whatever the tenant count. */
  maxStreams?: number;
  /** Events a client may fall behind before it is cut off (default 1000). */
  bufferPerStream?: number;
  /** A safety net for lost notices: every active tenant catches up this often (default 5 s). */
  pollIntervalMs?: number;
  /** Told of each failed catch-up or replay (the database is away). */
  onError?(error: unknown): void;
}

const pageSize = 500;

/** One tenant's live feed in this process: where it has read to, and who listens. */
interface TenantFeed {
  lastSeq: number;
  subscribers: Set<LiveSubscriber>;
  fetching: boolean;
  fetchAgain: boolean;
}

interface LiveSubscriber {
  subscription: Subscription;
  filter: EventFilter;
  /** Live events held while the subscriber replays from the database. */
  held: ActivityEvent[] | undefined;
}

/**
 * The live stream of one process. Pub/sub carries only "tenant T has events up to N";
 * the hub then reads what it has not seen from the database, once per tenant, and
 * hands each event to the matching subscribers. A missed notice therefore costs only
 * delay: the next notice, a resync after reconnect, or the poll fetches the gap.
 */
export class StreamHub {
  readonly #options: Required<Omit<StreamHubOptions, 'onError'>> & Pick<StreamHubOptions, 'onError'>;
  readonly #feeds = new Map<string, TenantFeed>();
  #poll: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: StreamHubOptions) {
    this.#options = {
      maxStreamsPerTenant: 100,
      maxStreams: 10_000,
      bufferPerStream: 1000,
      pollIntervalMs: 5000,
      ...options,
    };
  }

  /**
   * Starts listening to the transport; the promise resolves once it listens. Until
   * then (and during any outage of Redis or the database) the poll still delivers.
   */
  start(): Promise<void> {
    this.#poll = setInterval(() => this.#catchUpAll(), this.#options.pollIntervalMs);
    this.#poll.unref();
    return this.#options.transport.listen({
      onNotice: (notice) => this.#onNotice(notice),
      onResync: () => this.#catchUpAll(),
    });
  }

  /** Open streams across tenants. */
  get size(): number {
    let count = 0;
    for (const feed of this.#feeds.values()) count += feed.subscribers.size;
    return count;
  }

  /**
   * Subscribes to a tenant's matching events. With `afterSeq`, the events after it are
   * first replayed from the database, oldest first, then the stream goes live with no
   * gap and no duplicate; without it, the stream starts at the tenant's latest event.
   */
  async subscribe(tenantId: string, filter: EventFilter, afterSeq?: number): Promise<Subscription> {
    if (this.#closed) throw new ActivityError('DB_UNAVAILABLE', 'the server is shutting down');
    const existing = this.#feeds.get(tenantId);
    if (existing) this.#assertRoom(existing); // fail fast before any database read
    const opened = existing ?? (await this.#openFeed(tenantId));
    // A resume point past the tenant's latest event (stale, or from another database)
    // would silently swallow the events up to it: start at the latest event instead.
    const start =
      afterSeq !== undefined && afterSeq > opened.lastSeq
        ? await this.#clampToHead(tenantId, afterSeq)
        : afterSeq;
    // After the awaits: the feed may have closed, or others may have joined it.
    const feed = this.#feeds.get(tenantId) ?? opened;
    this.#feeds.set(tenantId, feed);
    this.#assertRoom(feed);
    const subscription = new Subscription(start ?? feed.lastSeq, this.#options.bufferPerStream);
    const subscriber: LiveSubscriber = { subscription, filter, held: start === undefined ? undefined : [] };
    feed.subscribers.add(subscriber);
    subscription.onClose(() => {
      feed.subscribers.delete(subscriber);
      if (feed.subscribers.size === 0 && this.#feeds.get(tenantId) === feed) this.#feeds.delete(tenantId);
    });
    if (start !== undefined) void this.#replay(tenantId, subscriber);
    return subscription;
  }

  #assertRoom(feed: TenantFeed) {
    if (this.size >= this.#options.maxStreams) {
      throw new ActivityError(
        'TOO_MANY_STREAMS',
        `this server holds its maximum of ${this.#options.maxStreams} streams`,
      );
    }
    if (feed.subscribers.size >= this.#options.maxStreamsPerTenant) {
      throw new ActivityError(
        'TOO_MANY_STREAMS',
        `at most ${this.#options.maxStreamsPerTenant} open streams per tenant on one server`,
      );
    }
  }

  /** Ends every stream and stops listening. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#poll);
    for (const feed of [...this.#feeds.values()]) {
      for (const subscriber of [...feed.subscribers]) subscriber.subscription.close('shutdown');
    }
    await this.#options.transport.close();
  }

  async #clampToHead(tenantId: string, afterSeq: number): Promise<number> {
    const [latest] = await this.#options.repository.page(tenantId, {}, { limit: 1 });
    return Math.min(afterSeq, latest?.seq ?? 0);
  }

  async #openFeed(tenantId: string): Promise<TenantFeed> {
    const [latest] = await this.#options.repository.page(tenantId, {}, { limit: 1 });
    // Another subscribe may have opened it while we read.
    const raced = this.#feeds.get(tenantId);
    if (raced) return raced;
    const feed: TenantFeed = {
      lastSeq: latest?.seq ?? 0,
      subscribers: new Set(),
      fetching: false,
      fetchAgain: false,
    };
    this.#feeds.set(tenantId, feed);
    return feed;
  }

  async #replay(tenantId: string, subscriber: LiveSubscriber) {
    const { subscription, filter } = subscriber;
    try {
      for (;;) {
        await subscription.waitForRoom();
        if (subscription.closeReason) return;
        // Never read more than the client's queue can take.
        const limit = Math.max(1, Math.min(pageSize, this.#options.bufferPerStream - subscription.buffered));
        const rows = await this.#options.repository.page(tenantId, filter, {
          afterSeq: subscription.position,
          order: 'asc',
          limit,
        });
        for (const event of rows) this.#deliver(subscription, event);
        if (rows.length < limit) break;
      }
      // Caught up with the database: release what arrived live meanwhile, then go live.
      const held = subscriber.held ?? [];
      subscriber.held = undefined;
      for (const event of held) this.#deliver(subscription, event);
    } catch (error) {
      this.#options.onError?.(error);
      subscription.close('error');
    }
  }

  #onNotice(notice: StreamNotice) {
    const feed = this.#feeds.get(notice.tenantId);
    if (feed && notice.seq > feed.lastSeq) void this.#catchUp(notice.tenantId, feed);
  }

  #catchUpAll() {
    for (const [tenantId, feed] of this.#feeds) void this.#catchUp(tenantId, feed);
  }

  /** Reads the tenant's new events once for all its subscribers; one read at a time per tenant. */
  async #catchUp(tenantId: string, feed: TenantFeed) {
    if (feed.fetching) {
      feed.fetchAgain = true;
      return;
    }
    feed.fetching = true;
    try {
      for (;;) {
        feed.fetchAgain = false;
        const rows = await this.#options.repository.page(
          tenantId,
          {},
          {
            afterSeq: feed.lastSeq,
            order: 'asc',
            limit: pageSize,
          },
        );
        for (const event of rows) {
          feed.lastSeq = event.seq;
          for (const subscriber of feed.subscribers) {
            if (!matchesFilter(event, subscriber.filter)) continue;
            if (!subscriber.held) this.#deliver(subscriber.subscription, event);
            else if (subscriber.held.length < this.#options.bufferPerStream) subscriber.held.push(event);
            else subscriber.subscription.close('slow');
          }
        }
        if (rows.length < pageSize && !feed.fetchAgain) break;
      }
    } catch (error) {
      // The database is away: the next notice or the poll tries again.
      this.#options.onError?.(error);
    } finally {
      feed.fetching = false;
    }
  }

  #deliver(subscription: Subscription, event: ActivityEvent) {
    if (event.seq <= subscription.position) return;
    subscription.push(event);
  }
}
