#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KP_ARENA_CHUNK (16 * 1024)

struct kp_arena_chunk {
	struct kp_arena_chunk *next;
	size_t size, used;
	_Alignas(max_align_t) unsigned char data[];
};

void kp_arena_init(struct kp_arena *a, size_t cap)
{
	a->head = NULL;
	a->used = 0;
	a->cap = cap;
}

void *kp_arena_alloc(struct kp_arena *a, size_t n)
{
	const size_t align = _Alignof(max_align_t);
	if (n > SIZE_MAX / 2)
		return NULL;
	n = (n + align - 1) & ~(align - 1);
	if (n == 0)
		n = align;
	if (a->cap && n > a->cap - (a->used < a->cap ? a->used : a->cap))
		return NULL;
	struct kp_arena_chunk *c = a->head;
	if (!c || c->size - c->used < n) {
		size_t size = n > KP_ARENA_CHUNK ? n : KP_ARENA_CHUNK;
		c = malloc(sizeof(*c) + size);
		if (!c)
			return NULL;
		c->size = size;
		c->used = 0;
		c->next = a->head;
		a->head = c;
	}
	void *p = c->data + c->used;
	c->used += n;
	a->used += n;
	memset(p, 0, n);
	return p;
}

void kp_arena_free(struct kp_arena *a)
{
	struct kp_arena_chunk *c = a->head;
	while (c) {
		struct kp_arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	a->head = NULL;
	a->used = 0;
}
