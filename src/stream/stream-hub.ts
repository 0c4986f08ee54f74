import type { ActivityRepository, EventFilter } from '../domain/activity-repository.js';
import { ActivityError } from '../domain/errors.js';
import type { ActivityEvent } from '../domain/event.js';
import { matchesFilter } from '../domain/event-filter.js';
import { eventJson } from '../domain/event-json.js';
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
  /** Characters of JSON a client may fall behind before it is cut off (default 1 MiB). */
  bytesPerStream?: number;
  /** A safety net for lost notices: every active tenant catches up this often (default 5 s). */
  pollIntervalMs?: number;
  /** Told of each failed catch-up or replay (the database is away). */
  onError?(error: unknown): void;
}

/** Most events read in one page. */
const pageSize = 500;
/** An event's JSON is at most about this long (8 KiB of metadata and the other fields). */
const largestEventChars = 10_240;

/** The limits of every stream, each optional in StreamHubOptions. */
export type StreamLimits = Pick<
  StreamHubOptions,
  'maxStreamsPerTenant' | 'maxStreams' | 'bufferPerStream' | 'bytesPerStream'
>;

/** One tenant's live feed in this process: where it has read to, and who listens. */
interface TenantFeed {
  lastSeq: number;
  /** Events per page, fitted to their size (see pageSizeFor). */
  pageSize: number;
  subscribers: Set<LiveSubscriber>;
  fetching: boolean;
  fetchAgain: boolean;
}

interface LiveSubscriber {
  subscription: Subscription;
  filter: EventFilter;
  /** Live events held while the subscriber replays from the database. */
  held: ActivityEvent[] | undefined;
  /** Characters of JSON in `held`. */
  heldBytes: number;
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
  /**
   * Places taken per tenant: a subscription holds one from subscribe until it is
   * released, not merely closed, so a client cut off but whose connection lingers
   * still counts against the caps.
   */
  readonly #places = new Map<string, number>();
  readonly #held = new Set<Subscription>();
  #poll: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: StreamHubOptions) {
    this.#options = {
      maxStreamsPerTenant: 100,
      maxStreams: 10_000,
      bufferPerStream: 1000,
      bytesPerStream: 1024 * 1024,
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

  /** Streams across tenants that hold a place: subscribed and not yet released. */
  get size(): number {
    return this.#held.size;
  }

  /**
   * Subscribes to a tenant's matching events. With `afterSeq`, the events after it are
   * first replayed from the database, oldest first, then the stream goes live with no
   * gap and no duplicate; without it, the stream starts at the tenant's latest event.
   */
  async subscribe(tenantId: string, filter: EventFilter, afterSeq?: number): Promise<Subscription> {
    if (this.#closed) throw new ActivityError('SHUTTING_DOWN', 'the server is shutting down');
    this.#assertRoom(tenantId); // fail fast before any database read
    const existing = this.#feeds.get(tenantId);
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
    this.#assertRoom(tenantId);
    const subscription = new Subscription(start ?? feed.lastSeq, {
      maxEvents: this.#options.bufferPerStream,
      maxBytes: this.#options.bytesPerStream,
    });
    const subscriber: LiveSubscriber = {
      subscription,
      filter,
      held: start === undefined ? undefined : [],
      heldBytes: 0,
    };
    feed.subscribers.add(subscriber);
    this.#places.set(tenantId, (this.#places.get(tenantId) ?? 0) + 1);
    this.#held.add(subscription);
    subscription.onClose(() => {
      feed.subscribers.delete(subscriber);
      if (feed.subscribers.size === 0 && this.#feeds.get(tenantId) === feed) this.#feeds.delete(tenantId);
    });
    subscription.onRelease(() => {
      const left = (this.#places.get(tenantId) ?? 1) - 1;
      if (left === 0) this.#places.delete(tenantId);
      else this.#places.set(tenantId, left);
      this.#held.delete(subscription);
    });
    if (start !== undefined) void this.#replay(tenantId, subscriber);
    return subscription;
  }

  #assertRoom(tenantId: string) {
    if (this.#held.size >= this.#options.maxStreams) {
      throw new ActivityError(
        'TOO_MANY_STREAMS',
        `this server holds its maximum of ${this.#options.maxStreams} streams`,
      );
    }
    if ((this.#places.get(tenantId) ?? 0) >= this.#options.maxStreamsPerTenant) {
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
    for (const subscription of [...this.#held]) {
      subscription.close('shutdown');
      subscription.release();
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
      pageSize: this.#pageSizeFor([]),
      subscribers: new Set(),
      fetching: false,
      fetchAgain: false,
    };
    this.#feeds.set(tenantId, feed);
    return feed;
  }

  async #replay(tenantId: string, subscriber: LiveSubscriber) {
    const { subscription, filter } = subscriber;
    let fitted = this.#pageSizeFor([]);
    try {
      for (;;) {
        await subscription.waitForRoom();
        if (subscription.closeReason) return;
        // Never read more than the client's queue can take.
        const limit = Math.max(1, Math.min(fitted, this.#options.bufferPerStream - subscription.buffered));
        const rows = await this.#options.repository.page(tenantId, filter, {
          afterSeq: subscription.position,
          order: 'asc',
          limit,
        });
        for (const event of rows) this.#deliver(subscription, event);
        fitted = this.#pageSizeFor(rows, fitted);
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
        const limit = feed.pageSize;
        const rows = await this.#options.repository.page(
          tenantId,
          {},
          {
            afterSeq: feed.lastSeq,
            order: 'asc',
            limit,
          },
        );
        // A read's events reach each client at once. Past half of what a client may fall
        // behind, the rest waits for the next read: the page size is fitted to the last
        // events' sizes, and a client that keeps up must not be cut off because a page of
        // small events (the tool's own, say) is followed by large ones.
        let bytes = 0;
        for (const [index, event] of rows.entries()) {
          bytes += eventJson(event).length;
          if (index > 0 && bytes > this.#options.bytesPerStream / 2) {
            feed.fetchAgain = true;
            break;
          }
          feed.lastSeq = event.seq;
          for (const subscriber of feed.subscribers) {
            if (!matchesFilter(event, subscriber.filter)) continue;
            if (!subscriber.held) this.#deliver(subscriber.subscription, event);
            else this.#hold(subscriber, event);
          }
        }
        feed.pageSize = this.#pageSizeFor(rows, feed.pageSize);
        if (rows.length < limit && !feed.fetchAgain) break;
      }
    } catch (error) {
      // The database is away: the next notice or the poll tries again.
      this.#options.onError?.(error);
    } finally {
      feed.fetching = false;
    }
  }

  /** Keeps a live event for a subscriber still replaying, within its limits. */
  #hold(subscriber: LiveSubscriber, event: ActivityEvent) {
    const bytes = eventJson(event).length;
    const held = subscriber.held as ActivityEvent[];
    if (
      held.length >= this.#options.bufferPerStream ||
      subscriber.heldBytes + bytes > this.#options.bytesPerStream
    ) {
      subscriber.subscription.close('slow');
      return;
    }
    held.push(event);
    subscriber.heldBytes += bytes;
  }

  /**
   * Events per page such that a page's JSON is at most half of what one client may
   * fall behind: a client that keeps up is never cut off by one page arriving at once.
   * Fitted to the size of the events last read (`rows`); before any, to the largest.
   */
  #pageSizeFor(rows: readonly ActivityEvent[], previous?: number): number {
    if (rows.length === 0 && previous !== undefined) return previous;
    let chars = largestEventChars;
    if (rows.length > 0) {
      let total = 0;
      for (const event of rows) total += eventJson(event).length;
      chars = total / rows.length;
    }
    return Math.max(1, Math.min(pageSize, Math.floor(this.#options.bytesPerStream / 2 / chars)));
  }

  #deliver(subscription: Subscription, event: ActivityEvent) {
    if (event.seq <= subscription.position) return;
    subscription.push(event);
  }
}
