#include "topology.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "region.h"

static pthread_mutex_t kx_topology_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kx_topology *kx_topology_current;
static uint64_t kx_topology_generation; /* under kx_topology_lock */
/*
 * The generation of kx_topology_current (0: none), stored after the pointer
 * changed, under the lock, with release; kx_topology_cached() loads it with
 * acquire. It only tells a cache that the snapshot changed: the pointer is
 * always taken under the lock, so a reader that sees an old value for a
 * moment keeps using the old snapshot, which its reference keeps alive.
 */
static atomic_uint_fast64_t kx_topology_published;
static void (*kx_topology_hook)(void *arg);
static void *kx_topology_hook_arg;

/* One line to the rules' log (routing has none of its own). */
__attribute__((format(printf, 3, 4))) static void kr_topology_log(const struct kr_topology_rules *r, bool error,
                                                                  const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	if (!r->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	r->log(error, line);
}

uint16_t kx_listen_port(const struct kr_topology_rules *r, int32_t node_id)
{
	for (size_t i = 0; i < r->port_map_cnt; i++)
		if (r->port_map[i].node_id == node_id)
			return r->port_map[i].port;
	int64_t port = (int64_t)r->broker_port_base + node_id;
	return node_id >= 0 && port <= 65535 ? (uint16_t)port : 0;
}

/* ---- topics ------------------------------------------------------------ */

struct kx_topic *kx_topic_new(const char *name, size_t name_len, const uint8_t *id, size_t partition_cnt,
                              size_t node_cnt)
{
	/* One block: the struct, partitions, node ids, name. */
	if (partition_cnt > SIZE_MAX / 4 / sizeof(struct kx_partition) || node_cnt > SIZE_MAX / 4 / sizeof(int32_t) ||
	    name_len > 65535)
		return NULL;
	size_t size = sizeof(struct kx_topic) + partition_cnt * sizeof(struct kx_partition) +
	              node_cnt * sizeof(int32_t) + name_len + 1;
	struct kx_topic *tp = calloc(1, size);
	if (!tp)
		return NULL;
	atomic_init(&tp->refs, 1);
	tp->partitions = (struct kx_partition *)(tp + 1);
	tp->partition_cap = partition_cnt;
	tp->nodes = (int32_t *)(tp->partitions + partition_cnt);
	tp->node_cap = node_cnt;
	char *n = (char *)(tp->nodes + node_cnt);
	if (name_len)
		memcpy(n, name, name_len);
	n[name_len] = '\0';
	tp->name = n;
	if (id) {
		memcpy(tp->id, id, 16);
		static const uint8_t zero[16];
		tp->has_id = memcmp(id, zero, 16) != 0;
	}
	return tp;
}

bool kx_topic_add_partition(struct kx_topic *tp, int32_t index, int32_t leader, int32_t leader_epoch,
                            int16_t error_code, const int32_t *replicas, size_t replica_cnt, const int32_t *isr,
                            size_t isr_cnt)
{
	if (tp->partition_cnt == tp->partition_cap || replica_cnt > UINT16_MAX || isr_cnt > UINT16_MAX ||
	    replica_cnt + isr_cnt > tp->node_cap - tp->node_used)
		return false;
	struct kx_partition *p = &tp->partitions[tp->partition_cnt++];
	int32_t *nodes = tp->nodes + tp->node_used;
	if (replica_cnt)
		memcpy(nodes, replicas, replica_cnt * sizeof(*nodes));
	if (isr_cnt)
		memcpy(nodes + replica_cnt, isr, isr_cnt * sizeof(*nodes));
	tp->node_used += replica_cnt + isr_cnt;
	*p = (struct kx_partition){.index = index,
	                           .leader = leader,
	                           .leader_epoch = leader_epoch,
	                           .error_code = error_code,
	                           .replica_cnt = (uint16_t)replica_cnt,
	                           .isr_cnt = (uint16_t)isr_cnt,
	                           .replicas = nodes,
	                           .isr = nodes + replica_cnt};
	return true;
}

static int kx_partition_cmp(const void *a, const void *b)
{
	int32_t x = ((const struct kx_partition *)a)->index, y = ((const struct kx_partition *)b)->index;
	return x < y ? -1 : x > y;
}

void kx_topic_finish(struct kx_topic *tp)
{
	bool sorted = true;
	for (size_t i = 1; i < tp->partition_cnt && sorted; i++)
		sorted = tp->partitions[i - 1].index < tp->partitions[i].index;
	if (!sorted)
		qsort(tp->partitions, tp->partition_cnt, sizeof(tp->partitions[0]), kx_partition_cmp);
}

void kx_topic_put(struct kx_topic *tp)
{
	if (tp && atomic_fetch_sub(&tp->refs, 1) == 1)
		free(tp);
}

static struct kx_topic *kx_topic_ref(struct kx_topic *tp)
{
	atomic_fetch_add(&tp->refs, 1);
	return tp;
}

const struct kx_partition *kx_topic_partition(const struct kx_topic *tp, int32_t index)
{
	if (!tp)
		return NULL;
	/* Partitions are usually 0..n-1: try the direct slot first. */
	if (index >= 0 && (size_t)index < tp->partition_cnt && tp->partitions[index].index == index)
		return &tp->partitions[index];
	size_t lo = 0, hi = tp->partition_cnt;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (tp->partitions[mid].index == index)
			return &tp->partitions[mid];
		if (tp->partitions[mid].index < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static bool kx_nodes_same(const int32_t *a, const int32_t *b, size_t n)
{
	return n == 0 || memcmp(a, b, n * sizeof(*a)) == 0;
}

/* Whether two topics say the same thing (name, id, every partition). */
static bool kx_topic_same(const struct kx_topic *a, const struct kx_topic *b)
{
	if (strcmp(a->name, b->name) != 0 || a->has_id != b->has_id || memcmp(a->id, b->id, 16) != 0 ||
	    a->partition_cnt != b->partition_cnt || a->gone != b->gone)
		return false;
	for (size_t i = 0; i < a->partition_cnt; i++) {
		const struct kx_partition *x = &a->partitions[i], *y = &b->partitions[i];
		if (x->index != y->index || x->leader != y->leader || x->leader_epoch != y->leader_epoch ||
		    x->error_code != y->error_code || x->replica_cnt != y->replica_cnt || x->isr_cnt != y->isr_cnt ||
		    !kx_nodes_same(x->replicas, y->replicas, x->replica_cnt) ||
		    !kx_nodes_same(x->isr, y->isr, x->isr_cnt))
			return false;
	}
	return true;
}

static int kx_topic_name_cmp(const void *a, const void *b)
{
	return strcmp((*(struct kx_topic *const *)a)->name, (*(struct kx_topic *const *)b)->name);
}

static int kx_topic_id_cmp(const void *a, const void *b)
{
	return memcmp((*(struct kx_topic *const *)a)->id, (*(struct kx_topic *const *)b)->id, 16);
}

/*
 * Binary search of a name-sorted array. name comes from the wire and may
 * hold NUL bytes: compared by length, never read as a C string (strncmp
 * stopped at a NUL and read the stored name past its end).
 */
static struct kx_topic *kx_find_name(struct kx_topic *const *v, size_t n, const char *name, size_t len)
{
	size_t lo = 0, hi = n;
	if (len == 0)
		return NULL;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const char *m = v[mid]->name;
		size_t mlen = strlen(m);
		int c = memcmp(m, name, mlen < len ? mlen : len);
		if (c == 0 && mlen != len)
			c = mlen < len ? -1 : 1; /* a prefix sorts first, as with strcmp */
		if (c == 0)
			return v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Binary search of an id-sorted array (of topics that have ids). */
static struct kx_topic *kx_find_id(struct kx_topic *const *v, size_t n, const uint8_t *id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = memcmp(v[mid]->id, id, 16);
		if (c == 0)
			return v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct kx_topic *kx_topology_topic(const struct kx_topology *t, const char *name, size_t len)
{
	return t ? kx_find_name(t->topics, t->topic_cnt, name, len) : NULL;
}

const struct kx_topic *kx_topology_topic_by_id(const struct kx_topology *t, const uint8_t *id)
{
	return t ? kx_find_id(t->topics_by_id, t->topic_id_cnt, id) : NULL;
}

/* ---- snapshots --------------------------------------------------------- */

static int kx_broker_cmp(const void *a, const void *b)
{
	int32_t x = ((const struct kx_broker *)a)->node_id, y = ((const struct kx_broker *)b)->node_id;
	return x < y ? -1 : x > y;
}

/* A snapshot of brokers and topics; takes over the references to topics[] (also on failure). */
static struct kx_topology *kx_topology_build(const struct kr_topology_rules *r, const struct kx_broker *brokers, size_t n,
                                             struct kx_topic **topics, size_t topic_cnt)
{
	struct kx_topology *t = calloc(1, sizeof(*t) + n * sizeof(t->brokers[0]));
	struct kx_topic **by_name = topic_cnt ? malloc(topic_cnt * sizeof(*by_name)) : NULL;
	struct kx_topic **by_id = topic_cnt ? malloc(topic_cnt * sizeof(*by_id)) : NULL;
	if (!t || (topic_cnt && (!by_name || !by_id))) {
		for (size_t i = 0; i < topic_cnt; i++)
			kx_topic_put(topics[i]);
		free(t);
		free(by_name);
		free(by_id);
		return NULL;
	}
	atomic_init(&t->refs, 1);
	t->broker_cnt = n;
	if (n)
		memcpy(t->brokers, brokers, n * sizeof(t->brokers[0]));
	if (n)
		qsort(t->brokers, n, sizeof(t->brokers[0]), kx_broker_cmp);
	for (size_t i = 0; i < n; i++) {
		struct kx_broker *b = &t->brokers[i];
		b->listen_port = kx_listen_port(r, b->node_id);
		kr_region_of(r->region_rules, r->region_rule_cnt, b->rack, b->region, sizeof(b->region));
	}
	t->topic_cnt = topic_cnt;
	t->topics = by_name;
	t->topics_by_id = by_id;
	for (size_t i = 0; i < topic_cnt; i++) {
		by_name[i] = topics[i];
		if (topics[i]->has_id)
			by_id[t->topic_id_cnt++] = topics[i];
	}
	if (topic_cnt)
		qsort(by_name, topic_cnt, sizeof(*by_name), kx_topic_name_cmp);
	if (t->topic_id_cnt)
		qsort(by_id, t->topic_id_cnt, sizeof(*by_id), kx_topic_id_cmp);
	return t;
}

struct kx_topology *kx_topology_new(const struct kr_topology_rules *r, const struct kx_broker *brokers, size_t n)
{
	return kx_topology_build(r, brokers, n, NULL, 0);
}

const struct kx_broker *kx_topology_broker(const struct kx_topology *t, int32_t node_id)
{
	size_t lo = 0, hi = t ? t->broker_cnt : 0;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (t->brokers[mid].node_id == node_id)
			return &t->brokers[mid];
		if (t->brokers[mid].node_id < node_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

struct kx_topology *kx_topology_get(void)
{
	pthread_mutex_lock(&kx_topology_lock);
	struct kx_topology *t = kx_topology_current;
	if (t)
		atomic_fetch_add(&t->refs, 1);
	pthread_mutex_unlock(&kx_topology_lock);
	return t;
}

void kx_topology_put(struct kx_topology *t)
{
	if (!t || atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	for (size_t i = 0; i < t->topic_cnt; i++)
		kx_topic_put(t->topics[i]);
	free(t->topics);
	free(t->topics_by_id);
	free(t);
}

void kx_topology_publish(struct kx_topology *t)
{
	pthread_mutex_lock(&kx_topology_lock);
	struct kx_topology *old = kx_topology_current;
	t->generation = ++kx_topology_generation;
	kx_topology_current = t;
	atomic_store_explicit(&kx_topology_published, t->generation, memory_order_release);
	void (*hook)(void *) = kx_topology_hook;
	void *arg = kx_topology_hook_arg;
	pthread_mutex_unlock(&kx_topology_lock);
	kx_topology_put(old);
	if (hook)
		hook(arg);
}

void kx_topology_on_publish(void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&kx_topology_lock);
	kx_topology_hook = fn;
	kx_topology_hook_arg = arg;
	pthread_mutex_unlock(&kx_topology_lock);
}

void kx_topology_clear(void)
{
	pthread_mutex_lock(&kx_topology_lock);
	struct kx_topology *old = kx_topology_current;
	kx_topology_current = NULL;
	atomic_store_explicit(&kx_topology_published, ++kx_topology_generation, memory_order_release);
	pthread_mutex_unlock(&kx_topology_lock);
	kx_topology_put(old);
}

const struct kx_topology *kx_topology_cached(struct kx_topology_cache *c)
{
	uint64_t g = atomic_load_explicit(&kx_topology_published, memory_order_acquire);
	if (g == c->generation)
		return c->topology; /* the common case: one load, no lock, no reference taken */
	struct kx_topology *t = kx_topology_get();
	kx_topology_put(c->topology);
	c->topology = t;
	/* t is at least as new as g; a snapshot published since is seen at the next call. */
	c->generation = g;
	return t;
}

void kx_topology_cache_drop(struct kx_topology_cache *c)
{
	kx_topology_put(c->topology);
	c->topology = NULL;
	c->generation = 0;
}

/* Whether `seen` says anything new of `known` (a response without racks, like
 * FindCoordinator's, says nothing about the rack). */
static bool kx_broker_same(const struct kx_broker *known, const struct kx_broker *seen)
{
	return known->port == seen->port && strcmp(known->host, seen->host) == 0 &&
	       (seen->rack[0] == '\0' || strcmp(known->rack, seen->rack) == 0);
}

/* Merges seen into all[0..*cnt) (room for *cnt + n); true when something changed. */
static bool kx_merge_brokers(const struct kr_topology_rules *r, struct kx_broker *all, size_t *cnt, const struct kx_broker *seen, size_t n)
{
	bool changed = false;
	for (size_t i = 0; i < n; i++) {
		size_t j = 0;
		while (j < *cnt && all[j].node_id != seen[i].node_id)
			j++;
		if (j == *cnt) {
			all[(*cnt)++] = seen[i];
			changed = true;
			kr_topology_log(r, false, "topology: new broker node %d (rack %s) at %s:%u", seen[i].node_id,
			        seen[i].rack[0] ? seen[i].rack : "-", seen[i].host, seen[i].port);
		} else if (!kx_broker_same(&all[j], &seen[i])) {
			kr_topology_log(r, false, "topology: broker node %d is now %s:%u rack %s (was %s:%u rack %s)", seen[i].node_id,
			        seen[i].host, seen[i].port, seen[i].rack[0] ? seen[i].rack : all[j].rack, all[j].host,
			        all[j].port, all[j].rack[0] ? all[j].rack : "-");
			struct kx_broker b = seen[i];
			if (!b.rack[0])
				memcpy(b.rack, all[j].rack, sizeof(b.rack));
			all[j] = b;
			changed = true;
		}
	}
	return changed;
}

/* Orders incoming topics by name, then by their place in the response. */
struct kx_incoming {
	struct kx_topic *tp;
	size_t at;
	bool keep; /* false: a later entry of the same topic, or the same as what is known */
};

/* By name, then id; equal topics compare 0. */
static int kx_topic_key_cmp(const struct kx_topic *x, const struct kx_topic *y)
{
	int c = strcmp(x->name, y->name);
	if (c == 0 && x->has_id != y->has_id)
		c = x->has_id ? 1 : -1;
	if (c == 0 && x->has_id)
		c = memcmp(x->id, y->id, 16);
	return c;
}

static int kx_incoming_cmp(const void *a, const void *b)
{
	const struct kx_incoming *x = a, *y = b;
	int c = kx_topic_key_cmp(x->tp, y->tp);
	return c ? c : x->at < y->at ? -1 : x->at > y->at;
}

/* The entry of in[] (sorted by kx_incoming_cmp) that holds tp. */
static struct kx_incoming *kx_incoming_find(struct kx_incoming *in, size_t m, const struct kx_topic *tp)
{
	size_t lo = 0, hi = m;
	while (lo < hi) { /* the first entry not below tp's key */
		size_t mid = (lo + hi) / 2;
		if (kx_topic_key_cmp(in[mid].tp, tp) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < m && kx_topic_key_cmp(in[lo].tp, tp) == 0; lo++)
		if (in[lo].tp == tp)
			return &in[lo];
	return NULL;
}

/*
 * The topics of the next snapshot: the known ones that no incoming topic
 * replaces, and the incoming ones that say something new. Takes over the
 * incoming references; returns referenced topics in *out (malloc'd).
 */
static bool kx_merge_topics(const struct kx_topology *cur, struct kx_topic *const *topics, size_t m,
                            struct kx_topic ***out, size_t *out_cnt, bool *changed)
{
	size_t have = cur ? cur->topic_cnt : 0;
	struct kx_incoming *in = m ? calloc(m, sizeof(*in)) : NULL;
	struct kx_topic **names = m ? malloc(m * sizeof(*names)) : NULL;
	struct kx_topic **ids = m ? malloc(m * sizeof(*ids)) : NULL;
	struct kx_topic **next = malloc((have + m + 1) * sizeof(*next));
	size_t n_names = 0, n_ids = 0, cnt = 0;
	if ((m && (!in || !names || !ids)) || !next) {
		for (size_t i = 0; i < m; i++)
			kx_topic_put(topics[i]);
		free(in);
		free(names);
		free(ids);
		free(next);
		return false;
	}
	for (size_t i = 0; i < m; i++)
		in[i] = (struct kx_incoming){topics[i], i, true};
	if (m)
		qsort(in, m, sizeof(*in), kx_incoming_cmp);
	/* The same topic twice in one response: the last one says it. */
	for (size_t i = 0; i + 1 < m; i++)
		if (kx_topic_key_cmp(in[i].tp, in[i + 1].tp) == 0)
			in[i].keep = false;
	for (size_t i = 0; i < m; i++) {
		if (!in[i].keep)
			continue;
		if (in[i].tp->name[0])
			names[n_names++] = in[i].tp;
		if (in[i].tp->has_id)
			ids[n_ids++] = in[i].tp;
	}
	if (n_ids)
		qsort(ids, n_ids, sizeof(*ids), kx_topic_id_cmp);

	for (size_t i = 0; i < have; i++) {
		struct kx_topic *o = cur->topics[i];
		struct kx_topic *by = kx_find_name(names, n_names, o->name, strlen(o->name));
		if (!by && o->has_id)
			by = kx_find_id(ids, n_ids, o->id);
		if (!by) {
			next[cnt++] = kx_topic_ref(o);
		} else if (!by->gone && kx_topic_same(o, by)) {
			next[cnt++] = kx_topic_ref(o); /* nothing new: the incoming copy is dropped below */
			struct kx_incoming *e = kx_incoming_find(in, m, by);
			if (e)
				e->keep = false;
		} else {
			*changed = true; /* replaced or removed */
		}
	}
	for (size_t i = 0; i < m; i++) {
		if (in[i].keep && !in[i].tp->gone) {
			next[cnt++] = in[i].tp;
			*changed = true;
		} else {
			kx_topic_put(in[i].tp);
		}
	}
	free(in);
	free(names);
	free(ids);
	*out = next;
	*out_cnt = cnt;
	return true;
}

/* One merge (or re-derive) at a time, so two threads cannot publish over each other. */
static pthread_mutex_t kx_merge_lock = PTHREAD_MUTEX_INITIALIZER;

bool kx_topology_merge_topics(const struct kr_topology_rules *r, const struct kx_broker *seen, size_t n,
                              struct kx_topic *const *topics, size_t topic_cnt)
{
	bool changed = false;
	struct kx_topic **next = NULL;
	size_t next_cnt = 0;

	/* One merge at a time, so two workers cannot publish over each other. */
	pthread_mutex_lock(&kx_merge_lock);
	struct kx_topology *cur = kx_topology_get();
	size_t have = cur ? cur->broker_cnt : 0;
	struct kx_broker *all = malloc((have + n + 1) * sizeof(*all));
	if (!all || !kx_merge_topics(cur, topics, topic_cnt, &next, &next_cnt, &changed)) {
		if (!all)
			for (size_t i = 0; i < topic_cnt; i++)
				kx_topic_put(topics[i]);
		pthread_mutex_unlock(&kx_merge_lock);
		kx_topology_put(cur);
		free(all);
		kr_topology_log(r, true, "topology: out of memory merging %zu brokers and %zu topics", n, topic_cnt);
		return false;
	}
	if (have)
		memcpy(all, cur->brokers, have * sizeof(*all));
	size_t cnt = have;
	if (kx_merge_brokers(r, all, &cnt, seen, n))
		changed = true;
	if (changed) {
		struct kx_topology *t = kx_topology_build(r, all, cnt, next, next_cnt);
		if (t)
			kx_topology_publish(t);
		else
			changed = false;
	} else {
		for (size_t i = 0; i < next_cnt; i++)
			kx_topic_put(next[i]);
	}
	free(next);
	free(all);
	kx_topology_put(cur);
	pthread_mutex_unlock(&kx_merge_lock);
	return changed;
}

bool kx_topology_merge(const struct kr_topology_rules *r, const struct kx_broker *seen, size_t n)
{
	return kx_topology_merge_topics(r, seen, n, NULL, 0);
}

bool kx_topology_apply_rules(const struct kr_topology_rules *r)
{
	pthread_mutex_lock(&kx_merge_lock);
	/* What the current snapshot holds, copied under its lock: brokers, and a reference to each topic. */
	pthread_mutex_lock(&kx_topology_lock);
	const struct kx_topology *cur = kx_topology_current;
	size_t nb = cur ? cur->broker_cnt : 0, nt = cur ? cur->topic_cnt : 0;
	struct kx_broker *brokers = cur ? malloc((nb + 1) * sizeof(struct kx_broker)) : NULL;
	struct kx_topic **topics = cur ? malloc((nt + 1) * sizeof(struct kx_topic *)) : NULL;
	bool have = cur && brokers && topics;
	if (have) {
		memcpy(brokers, cur->brokers, nb * sizeof(struct kx_broker));
		for (size_t i = 0; i < nt; i++)
			topics[i] = kx_topic_ref(cur->topics[i]); /* the new snapshot's: kx_topology_build takes them */
	}
	pthread_mutex_unlock(&kx_topology_lock);
	struct kx_topology *t = have ? kx_topology_build(r, brokers, nb, topics, nt) : NULL;
	free(brokers);
	free(topics);
	if (t)
		kx_topology_publish(t);
	pthread_mutex_unlock(&kx_merge_lock);
	return t != NULL;
}

int32_t kx_partition_read_replica(const struct kx_topology *t, const struct kx_partition *p, const char *region,
                                  uint64_t key, bool followers_ok)
{
	if (p->leader < 0 || !followers_ok || !region || !region[0])
		return p->leader;
	const struct kx_broker *lb = kx_topology_broker(t, p->leader);
	if (lb && strcmp(lb->region, region) == 0)
		return p->leader; /* the leader is local: no reason to read elsewhere */
	uint32_t local = 0;
	for (uint16_t i = 0; i < p->isr_cnt; i++) {
		const struct kx_broker *b = kx_topology_broker(t, p->isr[i]);
		local += b && strcmp(b->region, region) == 0;
	}
	if (local == 0)
		return p->leader;
	uint32_t pick = (uint32_t)(key % local);
	for (uint16_t i = 0; i < p->isr_cnt; i++) {
		const struct kx_broker *b = kx_topology_broker(t, p->isr[i]);
		if (b && strcmp(b->region, region) == 0 && pick-- == 0)
			return p->isr[i];
	}
	return p->leader;
}
