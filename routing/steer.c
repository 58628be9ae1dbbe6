#include "steer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int32_t kr_pick_local_replica(const struct kr_replica *isr, size_t n, int32_t leader, const char *client_rack,
                              const char *client_region, uint64_t spread)
{
	size_t local = 0, same_rack = 0;
	if (!client_region || !client_region[0])
		return -1;
	/* Two passes instead of a candidate array: count, then take the k-th. */
	for (size_t i = 0; i < n; i++) {
		const struct kr_replica *r = &isr[i];
		if (r->node_id == leader || r->node_id < 0 || !r->reachable || !r->region ||
		    strcmp(r->region, client_region) != 0)
			continue;
		local++;
		if (client_rack && client_rack[0] && r->rack && strcmp(r->rack, client_rack) == 0)
			same_rack++;
	}
	if (local == 0)
		return -1;
	bool by_rack = same_rack > 0;
	size_t k = (size_t)(spread % (by_rack ? same_rack : local));
	for (size_t i = 0; i < n; i++) {
		const struct kr_replica *r = &isr[i];
		if (r->node_id == leader || r->node_id < 0 || !r->reachable || !r->region ||
		    strcmp(r->region, client_region) != 0)
			continue;
		if (by_rack && !(r->rack && strcmp(r->rack, client_rack) == 0))
			continue;
		if (k-- == 0)
			return r->node_id;
	}
	return -1; /* unreachable */
}

/* ---- the redirect memory ------------------------------------------------ */

#define KR_STEER_MIN_CAP 16u

void kr_steer_table_init(struct kr_steer_table *t)
{
	memset(t, 0, sizeof(*t));
}

void kr_steer_table_free(struct kr_steer_table *t)
{
	if (!t)
		return;
	free(t->slot);
	kr_steer_table_init(t);
}

uint64_t kr_steer_key(const void *topic, size_t topic_len, int32_t partition)
{
	/* FNV-1a over the topic bytes, then the partition index. */
	uint64_t h = 0xcbf29ce484222325ULL;
	const uint8_t *p = topic;
	for (size_t i = 0; i < topic_len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	for (int i = 0; i < 4; i++) {
		h ^= (uint8_t)((uint32_t)partition >> (8 * i));
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Where a key's probe starts. The key is a hash already; the multiply brings its high bits down. */
static uint32_t kr_steer_home(const struct kr_steer_table *t, uint64_t key)
{
	return (uint32_t)((key ^ key >> 32) * 0x9e3779b97f4a7c15ULL >> 32) & (t->cap - 1);
}

static bool kr_steer_live(const struct kr_steer_slot *s, int64_t now_ms)
{
	return s->state != KR_STEER_FREE && now_ms < s->until_ms;
}

static struct kr_steer_slot *kr_steer_find(struct kr_steer_table *t, uint64_t key)
{
	if (!t->used)
		return NULL;
	uint32_t mask = t->cap - 1, i = kr_steer_home(t, key);
	for (uint32_t n = 0; n < t->cap; n++, i = (i + 1) & mask) {
		struct kr_steer_slot *s = &t->slot[i];
		if (s->state == KR_STEER_FREE)
			return NULL;
		if (s->key == key)
			return s;
	}
	return NULL; /* never: at most 3/4 of the slots are used */
}

/* The free slot key goes to (one exists: at most 3/4 of the slots are used). */
static struct kr_steer_slot *kr_steer_insert(struct kr_steer_table *t, uint64_t key)
{
	uint32_t mask = t->cap - 1, i = kr_steer_home(t, key);
	for (uint32_t n = 0; n < t->cap && t->slot[i].state != KR_STEER_FREE; n++)
		i = (i + 1) & mask;
	t->used++;
	t->slot[i].key = key;
	return &t->slot[i];
}

/*
 * Frees s without tombstones: each entry after it in the same run whose
 * home is at or before the hole moves into the hole, so no probe stops
 * short of an entry it should find.
 */
static void kr_steer_remove(struct kr_steer_table *t, struct kr_steer_slot *s)
{
	uint32_t mask = t->cap - 1, hole = (uint32_t)(s - t->slot), j = hole;
	for (uint32_t n = 1; n < t->cap; n++) {
		j = (j + 1) & mask;
		struct kr_steer_slot *c = &t->slot[j];
		if (c->state == KR_STEER_FREE)
			break;
		uint32_t home = kr_steer_home(t, c->key);
		if (((j - home) & mask) >= ((j - hole) & mask)) {
			t->slot[hole] = *c;
			hole = j;
		}
	}
	t->slot[hole].state = KR_STEER_FREE;
	t->used--;
}

/*
 * Room for one more entry: the live entries (expired ones dropped) moved to
 * a table at most half full after the addition. False at KR_STEER_MAX live
 * entries or without memory; the table is unchanged then.
 */
static bool kr_steer_make_room(struct kr_steer_table *t, int64_t now_ms)
{
	uint32_t live = 0;
	for (uint32_t i = 0; i < t->cap; i++)
		live += kr_steer_live(&t->slot[i], now_ms);
	if (live >= KR_STEER_MAX) {
		/* Full until the first live entry expires: no need to look again before. */
		int64_t first = INT64_MAX;
		for (uint32_t i = 0; i < t->cap; i++)
			if (kr_steer_live(&t->slot[i], now_ms) && t->slot[i].until_ms < first)
				first = t->slot[i].until_ms;
		t->full_until_ms = first;
		return false;
	}
	uint32_t cap = KR_STEER_MIN_CAP;
	while (cap / 2 < live + 1) /* at most log2(2 * KR_STEER_MAX) rounds */
		cap *= 2;
	struct kr_steer_table n = {.slot = calloc(cap, sizeof(*n.slot)), .cap = cap, .refused = t->refused};
	if (!n.slot)
		return false;
	for (uint32_t i = 0; i < t->cap; i++) {
		const struct kr_steer_slot *s = &t->slot[i];
		if (!kr_steer_live(s, now_ms))
			continue;
		struct kr_steer_slot *d = kr_steer_insert(&n, s->key);
		d->until_ms = s->until_ms;
		d->state = s->state;
	}
	free(t->slot);
	*t = n;
	return true;
}

enum kr_steer_verdict kr_steer_check(struct kr_steer_table *t, uint64_t key, int64_t now_ms, int64_t backoff_ms)
{
	struct kr_steer_slot *s = kr_steer_find(t, key);
	if (!s)
		return KR_STEER_MAY;
	if (now_ms >= s->until_ms) {
		kr_steer_remove(t, s);
		return KR_STEER_MAY;
	}
	if (s->state == KR_STEER_BACKOFF)
		return KR_STEER_HOLD;
	s->state = KR_STEER_BACKOFF;
	s->until_ms = now_ms + backoff_ms;
	return KR_STEER_FELL_BACK;
}

bool kr_steer_note_redirect(struct kr_steer_table *t, uint64_t key, int64_t now_ms, int64_t backoff_ms)
{
	if (backoff_ms <= 0)
		return true; /* no backoff: a return is never held, nothing to remember */
	struct kr_steer_slot *s = kr_steer_find(t, key);
	if (!s) {
		bool full = t->used >= KR_STEER_MAX;
		if (full && now_ms < t->full_until_ms) {
			t->refused++;
			return false;
		}
		if ((full || (uint64_t)(t->used + 1) * 4 > (uint64_t)t->cap * 3) && !kr_steer_make_room(t, now_ms)) {
			t->refused++;
			return false;
		}
		s = kr_steer_insert(t, key);
	}
	s->state = KR_STEER_REDIRECTED;
	s->until_ms = now_ms + backoff_ms;
	return true;
}
