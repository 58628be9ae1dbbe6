#include "ring.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

bool kx_ring_init(struct kx_ring *r, uint32_t size, uint32_t first)
{
	*r = (struct kx_ring){.size = size, .cap = first};
	r->items = calloc(first, size);
	return r->items != NULL;
}

void kx_ring_free(struct kx_ring *r)
{
	free(r->items);
	r->items = NULL;
	r->cnt = r->cap = r->head = 0;
}

bool kx_ring_push(struct kx_ring *r, const void *item, uint32_t max)
{
	if (r->cnt >= max)
		return false;
	if (r->cnt == r->cap) {
		uint32_t cap = r->cap * 2 < max ? r->cap * 2 : max;
		uint8_t *items = malloc((size_t)cap * r->size);
		if (!items)
			return false;
		for (uint32_t i = 0; i < r->cnt; i++) /* unrolled: the head moves to 0 */
			memcpy(items + (size_t)i * r->size, r->items + (size_t)((r->head + i) % r->cap) * r->size, r->size);
		free(r->items);
		r->items = items;
		r->head = 0;
		r->cap = cap;
	}
	memcpy(r->items + (size_t)((r->head + r->cnt) % r->cap) * r->size, item, r->size);
	r->cnt++;
	return true;
}

void kx_ring_pop(struct kx_ring *r)
{
	KX_BUG_ON(r->cnt == 0 || r->head >= r->cap);
	r->head = (r->head + 1) % r->cap;
	r->cnt--;
}

void kx_ring_drop_last(struct kx_ring *r)
{
	KX_BUG_ON(r->cnt == 0);
	r->cnt--;
}
