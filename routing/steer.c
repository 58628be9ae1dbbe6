#include "steer.h"

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

void kr_steer_table_init(struct kr_steer_table *t)
{
	memset(t, 0, sizeof(*t));
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

static struct kr_steer_slot *kr_steer_find(struct kr_steer_table *t, uint64_t key)
{
	for (size_t i = 0; t->used && i < KR_STEER_SLOTS; i++)
		if (t->slot[i].state != KR_STEER_FREE && t->slot[i].key == key)
			return &t->slot[i];
	return NULL;
}

static void kr_steer_free(struct kr_steer_table *t, struct kr_steer_slot *s)
{
	s->state = KR_STEER_FREE;
	t->used--;
}

enum kr_steer_verdict kr_steer_check(struct kr_steer_table *t, uint64_t key, int64_t now_ms, int64_t backoff_ms)
{
	struct kr_steer_slot *s = kr_steer_find(t, key);
	if (!s)
		return KR_STEER_MAY;
	if (now_ms >= s->until_ms) {
		kr_steer_free(t, s);
		return KR_STEER_MAY;
	}
	if (s->state == KR_STEER_BACKOFF)
		return KR_STEER_HOLD;
	s->state = KR_STEER_BACKOFF;
	s->until_ms = now_ms + backoff_ms;
	return KR_STEER_FELL_BACK;
}

void kr_steer_note_redirect(struct kr_steer_table *t, uint64_t key, int64_t now_ms, int64_t backoff_ms)
{
	struct kr_steer_slot *s = kr_steer_find(t, key);
	if (!s) {
		/* A free or expired slot, else the one closest to expiring. */
		struct kr_steer_slot *oldest = &t->slot[0];
		for (size_t i = 0; i < KR_STEER_SLOTS && !s; i++) {
			struct kr_steer_slot *c = &t->slot[i];
			if (c->state == KR_STEER_FREE)
				s = c;
			else if (now_ms >= c->until_ms)
				s = c, kr_steer_free(t, c);
			else if (c->until_ms < oldest->until_ms)
				oldest = c;
		}
		if (!s)
			kr_steer_free(t, s = oldest);
		t->used++;
	}
	s->key = key;
	s->state = KR_STEER_REDIRECTED;
	s->until_ms = now_ms + backoff_ms;
}
