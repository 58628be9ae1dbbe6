/*
 * conns: what /connections shows, readable from the admin thread while
 * the workers run (pgbouncer's SHOW CLIENTS / SHOW SERVERS as the model).
 *
 * Each client session and each shared upstream connection (regional pool)
 * embeds a struct kx_conn_stat. Its worker registers it when the
 * connection starts and removes it when it ends, under one mutex (once per
 * connection, never per request); the fields that change later are either
 * relaxed atomics (counts, bytes, state) or written under that same mutex
 * (placement, once). The admin thread walks the list under the mutex, so a
 * snapshot never waits on a worker's event loop and never reads freed
 * memory.
 *
 *   worker ── kx_conns_add ──► [registry: list + mutex] ◄── kx_conns_write_json (admin)
 *          ── relaxed adds to its own stat (bytes, requests, answers)
 */
#ifndef KX_CONNS_H
#define KX_CONNS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum kx_conn_kind {
	KX_CONN_MAPPED,   /* a client of a mapped listener, with its own upstream */
	KX_CONN_REGIONAL, /* a client of the regional listener (its requests go over the pool) */
	KX_CONN_POOL,     /* mode=regional: a shared upstream connection */
};

struct kx_conn_stat {
	struct kx_conn_stat *prev, *next; /* the registry's list (under its mutex) */
	enum kx_conn_kind kind;
	int worker;
	int64_t started_ms;  /* CLOCK_REALTIME */
	uint64_t started_ns; /* monotonic */
	uint16_t local_port;
	int32_t node_id;    /* the broker (mapped, pool); -1 bootstrap or none */
	char peer[64 + 300]; /* client address (and a regional client's principal), or the broker's host:port */
	char upstream[300]; /* mapped: where its upstream connects */
	/* placement: written once under the registry mutex */
	char rack[64], region[64];
	const char *place_source;                 /* a static name */
	bool local;                               /* pool: its broker is in the node's region */
	atomic_uint_fast64_t bytes_in, bytes_out; /* client: from / to the client; pool: to / from the broker */
	atomic_uint_fast64_t requests, answers;   /* requests that expect an answer, and answers given */
	atomic_int up_state;                      /* enum kx_upstream_state (mapped, pool) */
	bool registered;
};

/* Registers st (its constant fields filled), stamping its start time. */
void kx_conns_add(struct kx_conn_stat *st);
/* Removes st (no-op when not registered). */
void kx_conns_remove(struct kx_conn_stat *st);
/* Sets the client's address (from a PROXY protocol header). */
void kx_conns_set_peer(struct kx_conn_stat *st, const char *addr);
/* Sets where its upstream connects (mapped). */
void kx_conns_set_upstream(struct kx_conn_stat *st, const char *addr);
/* Sets its placement (once known). */
void kx_conns_place(struct kx_conn_stat *st, const char *rack, const char *region, const char *source);

static inline void kx_conn_count(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* /connections: {"clients":[...],"upstreams":[...]} of every registered connection. */
void kx_conns_write_json(FILE *out);

#endif
