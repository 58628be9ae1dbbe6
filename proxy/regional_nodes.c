/*
 * regional_nodes: the published node set and its refresher (regional_nodes.h).
 *
 * A lookup is two queries, A and AAAA, whose callbacks libevent runs later
 * (deferred, also when cancelled). The lookup is its own allocation, freed by
 * its last callback; the refresher points at it and it back at the
 * refresher, and freeing the refresher cuts that link, so a callback that
 * runs after it never touches freed memory.
 */
#include "regional_nodes.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* ---- the published snapshot --------------------------------------------- */

static pthread_mutex_t kx_nodes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kx_nodes *kx_nodes_current;  /* under kx_nodes_lock */
static uint64_t kx_nodes_generation;       /* under kx_nodes_lock */
static atomic_uint_fast64_t kx_nodes_published; /* as kx_topology_published: tells caches the set changed */

struct kx_nodes *kx_nodes_get(void)
{
	pthread_mutex_lock(&kx_nodes_lock);
	struct kx_nodes *n = kx_nodes_current;
	if (n)
		atomic_fetch_add(&n->refs, 1);
	pthread_mutex_unlock(&kx_nodes_lock);
	return n;
}

void kx_nodes_put(struct kx_nodes *n)
{
	if (n && atomic_fetch_sub(&n->refs, 1) == 1)
		free(n);
}

bool kx_nodes_publish(const struct kr_regional_nodes *set)
{
	KX_BUG_ON(!set->finished);
	struct kx_nodes *n = malloc(sizeof(*n));
	if (!n)
		return false;
	atomic_init(&n->refs, 1);
	n->set = *set;
	n->digest = kr_regional_nodes_digest(set);
	pthread_mutex_lock(&kx_nodes_lock);
	struct kx_nodes *old = kx_nodes_current;
	n->generation = ++kx_nodes_generation;
	kx_nodes_current = n;
	atomic_store_explicit(&kx_nodes_published, n->generation, memory_order_release);
	pthread_mutex_unlock(&kx_nodes_lock);
	kx_nodes_put(old);
	return true;
}

void kx_nodes_clear(void)
{
	pthread_mutex_lock(&kx_nodes_lock);
	struct kx_nodes *old = kx_nodes_current;
	kx_nodes_current = NULL;
	atomic_store_explicit(&kx_nodes_published, ++kx_nodes_generation, memory_order_release);
	pthread_mutex_unlock(&kx_nodes_lock);
	kx_nodes_put(old);
}

const struct kx_nodes *kx_nodes_cached(struct kx_nodes_cache *c)
{
	uint64_t g = atomic_load_explicit(&kx_nodes_published, memory_order_acquire);
	if (g == c->generation)
		return c->nodes; /* the common case: one load, no lock */
	struct kx_nodes *n = kx_nodes_get();
	kx_nodes_put(c->nodes);
	c->nodes = n;
	c->generation = g; /* n is at least as new as g; a later publish is seen at the next call */
	return n;
}

void kx_nodes_cache_drop(struct kx_nodes_cache *c)
{
	kx_nodes_put(c->nodes);
	c->nodes = NULL;
	c->generation = 0;
}

/* ---- the refresher ------------------------------------------------------- */

enum { KX_Q_A, KX_Q_AAAA, KX_Q_CNT };

struct kx_nodes_lookup {
	struct kx_nodes_refresher *r; /* NULL once the refresher is gone */
	struct evdns_request *req[KX_Q_CNT];
	bool done[KX_Q_CNT];
	int result[KX_Q_CNT]; /* DNS_ERR_* */
	int pending;          /* holds: callbacks still to come, and the start */
	bool unusable;        /* an address could not be added (why) */
	char why[256];
	struct kr_regional_nodes set; /* the addresses answered so far */
};

struct kx_nodes_refresher {
	struct event_base *base;
	struct evdns_base *dns;
	char name[KX_HOST_MAX];
	uint16_t port;
	int refresh_ms;
	int32_t self_id;
	struct event *timer;
	struct kx_nodes_lookup *lookup; /* in flight, or NULL */
	struct kx_nodes_stats stats;
};

const char *kx_nodes_state_name(enum kx_nodes_state s)
{
	switch (s) {
	case KX_NODES_WAITING: return "waiting";
	case KX_NODES_OK: return "ok";
	case KX_NODES_FAILING: return "failing";
	case KX_NODES_EMPTY: return "empty";
	case KX_NODES_UNUSABLE: return "unusable";
	}
	return "?";
}

void kx_nodes_source_from_config(const struct kx_config *cfg, struct kx_nodes_source *src)
{
	*src = (struct kx_nodes_source){
	    .fixed = cfg->regional_nodes.cnt ? &cfg->regional_nodes : NULL,
	    .dns_name = cfg->regional_nodes_dns.host,
	    .dns_port = cfg->regional_nodes_dns.port,
	    .refresh_ms = cfg->regional_nodes_refresh_ms,
	    .self_id = cfg->node_id,
	};
}

/* "3 (ids 1,2,3)", or "none" for no set: what log lines say of a set. */
static void kx_describe(const struct kr_regional_nodes *set, char *out, size_t len)
{
	if (!set || set->cnt == 0) {
		snprintf(out, len, "none");
		return;
	}
	size_t used = 0;
	int n = snprintf(out, len, "%zu (ids ", set->cnt);
	used = n > 0 ? (size_t)n : 0;
	for (size_t i = 0; i < set->cnt && used < len; i++) {
		n = snprintf(out + used, len - used, "%s%d", i ? "," : "", (int)set->ids[i]);
		used += n > 0 ? (size_t)n : 0;
	}
	if (used < len)
		snprintf(out + used, len - used, ")");
}

/* Publishes set when it differs from the current one; one info line old -> new. */
static void kx_refresher_offer(struct kx_nodes_refresher *r, const struct kr_regional_nodes *set, const char *source)
{
	char before[KR_REGIONAL_NODES_MAX * 12 + 32], after[sizeof(before)];
	struct kx_nodes *cur = kx_nodes_get();
	bool same = cur && kr_regional_nodes_equal(&cur->set, set);
	if (!same) {
		kx_describe(cur ? &cur->set : NULL, before, sizeof(before));
		kx_describe(set, after, sizeof(after));
	}
	kx_nodes_put(cur);
	if (same)
		return;
	if (!kx_nodes_publish(set)) {
		kx_error("regional nodes (%s): out of memory: the set stays %s", source, before);
		return;
	}
	r->stats.changes++;
	r->stats.node_cnt = set->cnt;
	kx_info("regional nodes (%s): %s -> %s", source, before, after);
	if (r->self_id >= 0 && kr_regional_nodes_index(set, r->self_id) < 0)
		kx_warn("regional nodes (%s): node.id %d is not one of them", source, (int)r->self_id);
}

/* Enters a state; one line per change of state, none while it lasts. */
static void kx_refresher_enter(struct kx_nodes_refresher *r, enum kx_nodes_state state, const char *detail)
{
	char kept[KR_REGIONAL_NODES_MAX * 12 + 32];
	enum kx_nodes_state was = r->stats.state;
	if (state == was)
		return;
	r->stats.state = state;
	r->stats.state_changes++;
	struct kx_nodes *cur = kx_nodes_get();
	kx_describe(cur ? &cur->set : NULL, kept, sizeof(kept));
	kx_nodes_put(cur);
	switch (state) {
	case KX_NODES_OK:
		if (was != KX_NODES_WAITING)
			kx_info("regional.nodes.dns %s:%u: answers again (was %s)", r->name, r->port,
			        kx_nodes_state_name(was));
		break;
	case KX_NODES_FAILING:
		kx_warn("regional.nodes.dns %s:%u: lookup failed (%s); the nodes stay %s", r->name, r->port, detail,
		        kept);
		break;
	case KX_NODES_EMPTY:
		kx_warn("regional.nodes.dns %s:%u: no address in the answer (%s); the nodes stay %s", r->name, r->port,
		        detail, kept);
		break;
	case KX_NODES_UNUSABLE:
		kx_error("regional.nodes.dns %s:%u: the answer makes no node set (%s); the nodes stay %s", r->name,
		         r->port, detail, kept);
		break;
	case KX_NODES_WAITING: break;
	}
}

/* DNS_ERR_NONE, NODATA and NOTEXIST are answers (NOTEXIST: a headless Service with no ready endpoint). */
static bool kx_is_answer(int result)
{
	return result == DNS_ERR_NONE || result == DNS_ERR_NODATA || result == DNS_ERR_NOTEXIST;
}

/* A query's result for a log line. */
static const char *kx_dns_result(int result)
{
	return result == DNS_ERR_NONE ? "answered" : evdns_err_to_string(result);
}

/* What one finished lookup means for the set. */
static void kx_refresher_handle(struct kx_nodes_refresher *r, struct kx_nodes_lookup *lk)
{
	char detail[320], source[KX_HOST_MAX + 48];
	r->stats.lookups++;
	snprintf(source, sizeof(source), "regional.nodes.dns %s:%u", r->name, r->port);
	snprintf(detail, sizeof(detail), "A: %s, AAAA: %s", kx_dns_result(lk->result[KX_Q_A]),
	         kx_dns_result(lk->result[KX_Q_AAAA]));
	bool answered = kx_is_answer(lk->result[KX_Q_A]) && kx_is_answer(lk->result[KX_Q_AAAA]);
	bool usable = answered && !lk->unusable &&
	              (lk->set.cnt == 0 || kr_regional_nodes_finish(&lk->set, lk->why, sizeof(lk->why)));
	if (!answered) {
		kx_refresher_enter(r, KX_NODES_FAILING, detail);
	} else if (!usable) {
		kx_refresher_enter(r, KX_NODES_UNUSABLE, lk->why);
	} else if (lk->set.cnt == 0) {
		kx_refresher_enter(r, KX_NODES_EMPTY, detail);
	} else {
		kx_refresher_enter(r, KX_NODES_OK, NULL);
		kx_refresher_offer(r, &lk->set, source);
	}
}

/* Adds one answered address (a repeated one once). */
static void kx_lookup_add(struct kx_nodes_lookup *lk, int family, const void *addr, uint16_t port)
{
	char host[INET6_ADDRSTRLEN];
	if (lk->unusable || !inet_ntop(family, addr, host, sizeof(host)))
		return;
	for (size_t i = 0; i < lk->set.cnt; i++)
		if (strcmp(lk->set.nodes[i].host, host) == 0)
			return;
	if (!kr_regional_nodes_add(&lk->set, -1, host, strlen(host), port, lk->why, sizeof(lk->why)))
		lk->unusable = true;
}

static void kx_refresher_schedule(struct kx_nodes_refresher *r);

/* Drops one hold on the lookup: each query's callback holds one, and its start one; the last finishes it. */
static void kx_lookup_release(struct kx_nodes_lookup *lk)
{
	struct kx_nodes_refresher *r = lk->r;
	if (--lk->pending > 0)
		return;
	if (r) {
		r->lookup = NULL;
		kx_refresher_handle(r, lk);
		kx_refresher_schedule(r);
	}
	free(lk);
}

/* One query's answer (or failure). */
static void kx_lookup_answered(struct kx_nodes_lookup *lk, int q, int result, int count, const void *addresses)
{
	lk->done[q] = true;
	lk->req[q] = NULL;
	lk->result[q] = result == DNS_ERR_NONE && count == 0 ? DNS_ERR_NODATA : result;
	for (int i = 0; lk->r && result == DNS_ERR_NONE && i < count; i++) {
		if (q == KX_Q_A)
			kx_lookup_add(lk, AF_INET, (const uint8_t *)addresses + (size_t)4 * (size_t)i, lk->r->port);
		else
			kx_lookup_add(lk, AF_INET6, (const uint8_t *)addresses + (size_t)16 * (size_t)i, lk->r->port);
	}
	kx_lookup_release(lk);
}

/* type is the answer's (set only when result is DNS_ERR_NONE). */
static void kx_on_a(int result, char type, int count, int ttl, void *addresses, void *arg)
{
	(void)ttl;
	kx_lookup_answered(arg, KX_Q_A, result == DNS_ERR_NONE && type != DNS_IPv4_A ? DNS_ERR_UNKNOWN : result, count,
	                   addresses);
}

static void kx_on_aaaa(int result, char type, int count, int ttl, void *addresses, void *arg)
{
	(void)ttl;
	kx_lookup_answered(arg, KX_Q_AAAA, result == DNS_ERR_NONE && type != DNS_IPv6_AAAA ? DNS_ERR_UNKNOWN : result,
	                   count, addresses);
}

static void kx_refresher_lookup(struct kx_nodes_refresher *r)
{
	static const evdns_callback_type cb[KX_Q_CNT] = {kx_on_a, kx_on_aaaa};
	struct kx_nodes_lookup *lk = calloc(1, sizeof(*lk));
	if (!lk) {
		kx_error("regional.nodes.dns %s:%u: out of memory for a lookup", r->name, r->port);
		kx_refresher_schedule(r);
		return;
	}
	lk->r = r;
	lk->pending = KX_Q_CNT + 1; /* the queries' callbacks, and this start: a callback inside a call frees nothing */
	kr_regional_nodes_init(&lk->set);
	r->lookup = lk;
	for (int q = 0; q < KX_Q_CNT; q++) {
		struct evdns_request *req = q == KX_Q_A ? evdns_base_resolve_ipv4(r->dns, r->name, 0, cb[q], lk)
		                                        : evdns_base_resolve_ipv6(r->dns, r->name, 0, cb[q], lk);
		if (!req) { /* not sent: no callback will come (the start's hold keeps lk) */
			lk->done[q] = true;
			lk->result[q] = DNS_ERR_UNKNOWN;
			lk->pending--;
		} else if (!lk->done[q]) {
			lk->req[q] = req;
		}
	}
	kx_lookup_release(lk);
}

static void kx_on_refresh(evutil_socket_t fd, short what, void *arg)
{
	struct kx_nodes_refresher *r = arg;
	(void)fd;
	(void)what;
	if (!r->lookup)
		kx_refresher_lookup(r);
}

/* The next lookup: refresh.ms after this one, or within a second while no set is known. */
static void kx_refresher_schedule(struct kx_nodes_refresher *r)
{
	int ms = r->refresh_ms;
	if (r->stats.changes == 0 && ms > 1000)
		ms = 1000;
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
	evtimer_add(r->timer, &tv);
}

struct kx_nodes_refresher *kx_nodes_refresher_new(struct event_base *base, struct evdns_base *dns,
                                                  const struct kx_nodes_source *src)
{
	struct kx_nodes_refresher *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->base = base;
	r->dns = dns;
	r->self_id = src->self_id;
	r->stats.state = KX_NODES_WAITING;
	if (src->fixed) {
		r->stats.state = KX_NODES_OK;
		kx_refresher_offer(r, src->fixed, "regional.nodes");
		return r;
	}
	if (!src->dns_name || !src->dns_name[0] || strlen(src->dns_name) >= sizeof(r->name) || !dns ||
	    src->refresh_ms < 1) {
		free(r);
		return NULL;
	}
	snprintf(r->name, sizeof(r->name), "%s", src->dns_name);
	r->port = src->dns_port;
	r->refresh_ms = src->refresh_ms;
	r->timer = evtimer_new(base, kx_on_refresh, r);
	if (!r->timer) {
		free(r);
		return NULL;
	}
	kx_refresher_lookup(r);
	return r;
}

void kx_nodes_refresher_free(struct kx_nodes_refresher *r)
{
	if (!r)
		return;
	struct kx_nodes_lookup *lk = r->lookup;
	if (lk) {
		lk->r = NULL; /* its callbacks free it and touch nothing else */
		for (int q = 0; q < KX_Q_CNT; q++)
			if (!lk->done[q] && lk->req[q])
				evdns_cancel_request(r->dns, lk->req[q]);
	}
	if (r->timer)
		event_free(r->timer);
	free(r);
}

void kx_nodes_refresher_stats(const struct kx_nodes_refresher *r, struct kx_nodes_stats *out)
{
	*out = r->stats;
}
