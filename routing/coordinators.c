/*
 * coordinators: the key -> real coordinator table (coordinators.h).
 */
#include "coordinators.h"

#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

void kr_coordinators_init(struct kr_coordinators *c, int64_t max_age_ms)
{
	memset(c, 0, sizeof(*c));
	c->max_age_ms = max_age_ms;
}

void kr_coordinators_free(struct kr_coordinators *c)
{
	free(c->slots);
	c->slots = NULL;
}

/* Never 0 (an empty slot's). */
static uint64_t kr_coord_hash(int8_t type, const char *key, size_t len)
{
	uint64_t h = XXH3_64bits_withSeed(key, len, (uint64_t)(uint8_t)type + 1);
	return h ? h : 1;
}

static struct kr_coord_entry *kr_coord_slot(const struct kr_coordinators *c, uint64_t h)
{
	return &c->slots[h % KR_COORD_SLOTS];
}

static bool kr_coord_is(const struct kr_coord_entry *e, uint64_t h, int8_t type, const char *key, size_t len)
{
	return e->hash == h && e->type == type && e->len == len && memcmp(e->key, key, len) == 0;
}

bool kr_coordinators_learn(struct kr_coordinators *c, int8_t type, const char *key, size_t len, int32_t node,
                           int64_t now_ms)
{
	if (len > KR_COORD_KEY_MAX || node < 0)
		return false;
	if (!c->slots && !(c->slots = calloc(KR_COORD_SLOTS, sizeof(*c->slots))))
		return false;
	uint64_t h = kr_coord_hash(type, key, len);
	struct kr_coord_entry *e = kr_coord_slot(c, h);
	e->hash = h;
	e->type = type;
	e->len = (uint8_t)len;
	memcpy(e->key, key, len);
	e->node = node;
	e->learned_ms = now_ms;
	c->learned++;
	return true;
}

int32_t kr_coordinators_find(struct kr_coordinators *c, int8_t type, const char *key, size_t len, int64_t now_ms,
                             bool *stale)
{
	*stale = false;
	if (!c->slots || len > KR_COORD_KEY_MAX) {
		c->misses++;
		return -1;
	}
	uint64_t h = kr_coord_hash(type, key, len);
	const struct kr_coord_entry *e = kr_coord_slot(c, h);
	if (!kr_coord_is(e, h, type, key, len)) {
		c->misses++;
		return -1;
	}
	c->hits++;
	*stale = now_ms - e->learned_ms >= c->max_age_ms;
	return e->node;
}

void kr_coordinators_forget(struct kr_coordinators *c, int8_t type, const char *key, size_t len)
{
	if (!c->slots || len > KR_COORD_KEY_MAX)
		return;
	uint64_t h = kr_coord_hash(type, key, len);
	struct kr_coord_entry *e = kr_coord_slot(c, h);
	if (kr_coord_is(e, h, type, key, len)) {
		e->hash = 0;
		c->forgotten++;
	}
}
