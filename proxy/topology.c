#include "topology.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static pthread_mutex_t kx_topology_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kx_topology *kx_topology_current;
static uint64_t kx_topology_generation;
static void (*kx_topology_hook)(void *arg);
static void *kx_topology_hook_arg;

uint16_t kx_listen_port(const struct kx_config *cfg, int32_t node_id)
{
	for (size_t i = 0; i < cfg->port_map_cnt; i++)
		if (cfg->port_map[i].node_id == node_id)
			return cfg->port_map[i].port;
	int64_t port = (int64_t)cfg->broker_port_base + node_id;
	return node_id >= 0 && port <= 65535 ? (uint16_t)port : 0;
}

static int kx_broker_cmp(const void *a, const void *b)
{
	int32_t x = ((const struct kx_broker *)a)->node_id, y = ((const struct kx_broker *)b)->node_id;
	return x < y ? -1 : x > y;
}

struct kx_topology *kx_topology_new(const struct kx_config *cfg, const struct kx_broker *brokers, size_t n)
{
	struct kx_topology *t = calloc(1, sizeof(*t) + n * sizeof(t->brokers[0]));
	if (!t)
		return NULL;
	atomic_init(&t->refs, 1);
	t->broker_cnt = n;
	memcpy(t->brokers, brokers, n * sizeof(t->brokers[0]));
	qsort(t->brokers, n, sizeof(t->brokers[0]), kx_broker_cmp);
	for (size_t i = 0; i < n; i++)
		t->brokers[i].listen_port = kx_listen_port(cfg, t->brokers[i].node_id);
	return t;
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
	if (t && atomic_fetch_sub(&t->refs, 1) == 1)
		free(t);
}

void kx_topology_publish(struct kx_topology *t)
{
	pthread_mutex_lock(&kx_topology_lock);
	struct kx_topology *old = kx_topology_current;
	t->generation = ++kx_topology_generation;
	kx_topology_current = t;
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
	pthread_mutex_unlock(&kx_topology_lock);
	kx_topology_put(old);
}

/* Whether `seen` says anything new of `known` (a response without racks, like
 * FindCoordinator's, says nothing about the rack). */
static bool kx_broker_same(const struct kx_broker *known, const struct kx_broker *seen)
{
	return known->port == seen->port && strcmp(known->host, seen->host) == 0 &&
	       (seen->rack[0] == '\0' || strcmp(known->rack, seen->rack) == 0);
}

bool kx_topology_merge(const struct kx_config *cfg, const struct kx_broker *seen, size_t n)
{
	static pthread_mutex_t merge_lock = PTHREAD_MUTEX_INITIALIZER;
	bool changed = false;

	/* One merge at a time, so two workers cannot publish over each other. */
	pthread_mutex_lock(&merge_lock);
	struct kx_topology *cur = kx_topology_get();
	size_t have = cur ? cur->broker_cnt : 0;
	struct kx_broker *all = malloc((have + n) * sizeof(*all));
	if (!all) {
		pthread_mutex_unlock(&merge_lock);
		kx_topology_put(cur);
		kx_error("topology: out of memory merging %zu brokers", n);
		return false;
	}
	if (have)
		memcpy(all, cur->brokers, have * sizeof(*all));
	size_t cnt = have;
	for (size_t i = 0; i < n; i++) {
		size_t j = 0;
		while (j < cnt && all[j].node_id != seen[i].node_id)
			j++;
		if (j == cnt) {
			all[cnt++] = seen[i];
			changed = true;
			kx_info("topology: new broker node %d (rack %s) at %s:%u", seen[i].node_id,
			        seen[i].rack[0] ? seen[i].rack : "-", seen[i].host, seen[i].port);
		} else if (!kx_broker_same(&all[j], &seen[i])) {
			kx_info("topology: broker node %d is now %s:%u rack %s (was %s:%u rack %s)", seen[i].node_id,
			        seen[i].host, seen[i].port, seen[i].rack[0] ? seen[i].rack : all[j].rack, all[j].host,
			        all[j].port, all[j].rack[0] ? all[j].rack : "-");
			struct kx_broker b = seen[i];
			if (!b.rack[0])
				memcpy(b.rack, all[j].rack, sizeof(b.rack));
			all[j] = b;
			changed = true;
		}
	}
	if (changed) {
		struct kx_topology *t = kx_topology_new(cfg, all, cnt);
		if (t)
			kx_topology_publish(t);
		else
			changed = false;
	}
	free(all);
	kx_topology_put(cur);
	pthread_mutex_unlock(&merge_lock);
	return changed;
}
