/*
 * steer: which replica a consumer should read a partition from instead of
 * its leader, and when kstretch stops saying so (fetch.prefer.local).
 *
 * A leader outside the client's region answers a Fetch; if the partition has
 * an in-sync replica in the client's region (not the leader, and reachable
 * through a kstretch listener), kstretch sets that partition's
 * PreferredReadReplica to it, as a broker with the rack-aware replica
 * selector would, and the client moves its fetches there (KIP-392).
 *
 * Choice among the local in-sync replicas: one in the client's own rack if
 * there is one, else any in its region; ties are spread over partitions by a
 * hash of (topic, partition), so one follower does not take every partition.
 *
 * Falling back: a partition redirected on a connection to its leader that
 * shows up again in a Fetch response on that connection within
 * fetch.prefer.local.backoff.ms means the client came back to the leader
 * (the follower failed it, or went away). kstretch then leaves the partition
 * with the leader for fetch.prefer.local.backoff.ms before redirecting it
 * again. A return after that window is a routine one (a client re-checking
 * its leader, e.g. when its preferred replica expires) and is redirected at
 * once.
 *
 * The memory is per connection: a hash table (open addressing, linear
 * probing) keyed by (topic, partition), which grows with the partitions
 * redirected on the connection. An entry is never evicted before it expires
 * (fetch.prefer.local.backoff.ms after its redirect or its return), so the
 * fallback holds for any number of partitions. What bounds the memory:
 *
 *   - only a redirect adds an entry, and kstretch redirects only partitions
 *     its topology names with this connection's broker as leader;
 *   - expired entries are dropped when met and when the table is rebuilt,
 *     so the live ones are the partitions redirected or returned within
 *     the last backoff window;
 *   - KR_STEER_MAX live entries at most (a few MiB): past that, and when
 *     memory runs out, kr_steer_note_redirect() refuses and the partition
 *     stays with its leader. A partition kstretch cannot remember is never
 *     redirected, so none can bounce between leader and replica unnoticed.
 */
#ifndef KR_STEER_H
#define KR_STEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An in-sync replica of a partition, as the topology knows it. */
struct kr_replica {
	int32_t node_id;
	const char *rack;   /* "" = unknown */
	const char *region; /* "" = unknown */
	bool reachable;     /* kstretch has a listener for it */
};

/*
 * The replica a client in (client_rack, client_region) should read from
 * instead of leader, or -1 when no in-sync replica other than the leader is
 * reachable in client_region. spread picks among equals (kr_steer_key()).
 */
int32_t kr_pick_local_replica(const struct kr_replica *isr, size_t n, int32_t leader, const char *client_rack,
                              const char *client_region, uint64_t spread);

/* Live entries one connection may hold; a redirect past that is refused. */
#define KR_STEER_MAX (1u << 16)

enum kr_steer_state {
	KR_STEER_FREE = 0,
	KR_STEER_REDIRECTED, /* redirected; a return before until_ms is a fallback */
	KR_STEER_BACKOFF,    /* fell back; not redirected again before until_ms */
};

struct kr_steer_slot {
	uint64_t key; /* kr_steer_key() */
	int64_t until_ms;
	uint8_t state;
};

/*
 * One connection's redirect memory. Zeroed (or kr_steer_table_init()) is
 * empty and owns nothing; kr_steer_table_free() gives the slots back.
 */
struct kr_steer_table {
	struct kr_steer_slot *slot; /* cap slots; NULL until the first redirect */
	uint32_t cap;               /* 0 or a power of two; at most 3/4 of it used */
	uint32_t used;              /* slots not FREE: 0 makes a lookup free */
	uint64_t refused;           /* redirects refused (KR_STEER_MAX reached, or no memory) */
	int64_t full_until_ms;      /* KR_STEER_MAX live entries: none expires before then */
};

enum kr_steer_verdict {
	KR_STEER_MAY,       /* may be redirected */
	KR_STEER_HOLD,      /* backing off: stays with the leader */
	KR_STEER_FELL_BACK, /* it was redirected and came back: now backing off (count it once) */
};

void kr_steer_table_init(struct kr_steer_table *t);

/* Frees the slots; t is empty again (NULL: nothing). */
void kr_steer_table_free(struct kr_steer_table *t);

/* Key of a partition: topic name (Fetch v0-12) or 16-byte topic id (v13+), and index. */
uint64_t kr_steer_key(const void *topic, size_t topic_len, int32_t partition);

/*
 * What may be done with a partition that appears in a Fetch response on
 * this connection, at now_ms. Turns a fresh REDIRECTED entry into BACKOFF
 * (until now_ms + backoff_ms) and says so once (KR_STEER_FELL_BACK); frees
 * expired entries. Calling it again for the same partition and time gives
 * KR_STEER_HOLD or KR_STEER_MAY: idempotent apart from that transition.
 */
enum kr_steer_verdict kr_steer_check(struct kr_steer_table *t, uint64_t key, int64_t now_ms, int64_t backoff_ms);

/*
 * Remembers that the partition is redirected at now_ms (until now_ms +
 * backoff_ms). False when it cannot be remembered (KR_STEER_MAX live entries,
 * or no memory; t->refused counts it): the caller must not redirect it then.
 */
__attribute__((warn_unused_result)) bool kr_steer_note_redirect(struct kr_steer_table *t, uint64_t key,
                                                                int64_t now_ms, int64_t backoff_ms);

#endif
