/*
 * ring: a FIFO of fixed-size entries in a ring that doubles as it fills, up
 * to a cap its owner gives: an idle connection holds a few entries, a busy
 * one up to its limit (max.inflight.requests), never more.
 */
#ifndef KX_RING_H
#define KX_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kx_ring {
	uint8_t *items;
	uint32_t head, cnt, cap; /* entries: the first, how many, room for */
	uint32_t size;           /* bytes per entry */
};

/* An empty ring with room for `first` entries of `size` bytes; false when out of memory. */
bool kx_ring_init(struct kx_ring *r, uint32_t size, uint32_t first);
void kx_ring_free(struct kx_ring *r);

/* Appends a copy of *item; false when `max` entries are there already or
 * no memory is left for more (the ring is then unchanged). */
bool kx_ring_push(struct kx_ring *r, const void *item, uint32_t max);

/* The oldest entry (NULL when empty), and dropping it. */
static inline void *kx_ring_head(const struct kx_ring *r)
{
	return r->cnt ? r->items + (size_t)r->head * r->size : NULL;
}
void kx_ring_pop(struct kx_ring *r);

/* The i-th oldest entry (i < cnt). */
static inline void *kx_ring_at(const struct kx_ring *r, uint32_t i)
{
	return r->items + (size_t)((r->head + i) % r->cap) * r->size;
}

/* Drops the newest entry (undoing a push). */
void kx_ring_drop_last(struct kx_ring *r);

#endif
