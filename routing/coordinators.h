/*
 * coordinators: a regional node's table of which real broker coordinates a
 * group or a transactional id (mode=regional, issue 16), learned from the
 * FindCoordinator answers it sees and the lookups it makes itself.
 *
 * Clients are told a regional node coordinates a key (kr_regional_coordinator)
 * and send its group or transaction requests there; that node sends them on
 * to the real coordinator this table names. An entry older than the table's
 * max age is still used, and reported stale so the caller looks it up again;
 * one a broker answered NOT_COORDINATOR for is forgotten. A fixed number of
 * slots, each key in the slot its hash picks (a newer key takes the slot over):
 * a busy table forgets, and the caller looks a key up again, never more.
 *
 * No sockets; the caller passes the time; one table per worker (no locks).
 */
#ifndef KR_COORDINATORS_H
#define KR_COORDINATORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KR_COORD_SLOTS   4096
#define KR_COORD_KEY_MAX 255 /* longer keys are never kept (looked up each time) */

struct kr_coord_entry {
	uint64_t hash;    /* 0: empty */
	int32_t node;     /* the real coordinator's node id */
	int8_t type;      /* FindCoordinator KeyType */
	uint8_t len;
	int64_t learned_ms;
	char key[KR_COORD_KEY_MAX];
};

struct kr_coordinators {
	struct kr_coord_entry *slots; /* KR_COORD_SLOTS, allocated on first use */
	int64_t max_age_ms;
	uint64_t learned, forgotten, hits, misses;
};

void kr_coordinators_init(struct kr_coordinators *c, int64_t max_age_ms);
void kr_coordinators_free(struct kr_coordinators *c);

/* Notes that node coordinates (type, key) as of now_ms. False when it cannot be kept (out of memory, key too long). */
bool kr_coordinators_learn(struct kr_coordinators *c, int8_t type, const char *key, size_t len, int32_t node,
                           int64_t now_ms);

/* The node known to coordinate (type, key), or -1; *stale set when the entry is past its max age. */
int32_t kr_coordinators_find(struct kr_coordinators *c, int8_t type, const char *key, size_t len, int64_t now_ms,
                             bool *stale);

/* Forgets (type, key) (a broker said it is not its coordinator). */
void kr_coordinators_forget(struct kr_coordinators *c, int8_t type, const char *key, size_t len);

#endif
