#include "metrics.h"

#include <pthread.h>
#include <string.h>

#include "log.h"
#include "text.h"

struct kx_metrics_shard {
	struct kx_metrics m;
	atomic_uint_fast64_t region_bytes[KX_REGIONS_MAX][KX_REGIONS_MAX][2];
} __attribute__((aligned(64)));

static struct kx_metrics_shard kx_shards[KX_METRIC_SHARDS];
_Thread_local struct kx_metrics *kx_metrics_here = &kx_shards[0].m;
_Thread_local atomic_uint_fast64_t (*kx_region_bytes_here)[KX_REGIONS_MAX][2] = kx_shards[0].region_bytes;

void kx_metrics_thread(int worker_id)
{
	struct kx_metrics_shard *sh = &kx_shards[1 + (unsigned)worker_id % (KX_METRIC_SHARDS - 1)];
	kx_metrics_here = &sh->m;
	kx_region_bytes_here = sh->region_bytes;
}

uint64_t kx_metric_sum(size_t offset)
{
	uint64_t n = 0;
	for (size_t i = 0; i < KX_METRIC_SHARDS; i++) {
		atomic_uint_fast64_t *c = (atomic_uint_fast64_t *)((char *)&kx_shards[i].m + offset);
		n += atomic_load_explicit(c, memory_order_relaxed);
	}
	return n;
}

static uint64_t kx_region_bytes_sum(int c, int b, int d)
{
	uint64_t n = 0;
	for (size_t i = 0; i < KX_METRIC_SHARDS; i++)
		n += atomic_load_explicit(&kx_shards[i].region_bytes[c][b][d], memory_order_relaxed);
	return n;
}

/* Region names by index; a name is written before the count that publishes it. */
#define KX_REGION_NAME_MAX 64
static char kx_region_names[KX_REGIONS_MAX][KX_REGION_NAME_MAX];
static atomic_int kx_region_cnt = 1; /* 0 is "unknown" */
static pthread_mutex_t kx_region_lock = PTHREAD_MUTEX_INITIALIZER;
static bool kx_region_full_logged; /* under kx_region_lock */

static int kx_region_find(const char *region, int cnt)
{
	for (int i = 1; i < cnt; i++)
		if (strcmp(kx_region_names[i], region) == 0)
			return i;
	return 0;
}

int kx_region_index(const char *region)
{
	if (!region || !region[0] || strlen(region) >= KX_REGION_NAME_MAX)
		return 0;
	int i = kx_region_find(region, atomic_load_explicit(&kx_region_cnt, memory_order_acquire));
	if (i)
		return i;
	pthread_mutex_lock(&kx_region_lock);
	int cnt = atomic_load_explicit(&kx_region_cnt, memory_order_relaxed);
	i = kx_region_find(region, cnt);
	if (!i && cnt < KX_REGIONS_MAX) {
		strcpy(kx_region_names[cnt], region);
		atomic_store_explicit(&kx_region_cnt, cnt + 1, memory_order_release);
		i = cnt;
	} else if (!i && !kx_region_full_logged) {
		kx_region_full_logged = true;
		kx_warn("metrics: region %s and any later one are counted as unknown in kstretch_region_bytes: "
		        "%d regions are counted at most (check region.map)",
		        region, KX_REGIONS_MAX - 1);
	}
	pthread_mutex_unlock(&kx_region_lock);
	return i;
}

const char *kx_region_name(int i)
{
	if (i <= 0 || i >= atomic_load_explicit(&kx_region_cnt, memory_order_acquire))
		return "unknown";
	return kx_region_names[i];
}

/* A Prometheus label value: backslash, double quote and newline escaped. */
void kx_metrics_write(FILE *out)
{
#define KX_METRIC_PRINT(name, help)                                                                                    \
	fprintf(out, "# HELP kstretch_%s %s\n# TYPE kstretch_%s %s\nkstretch_%s %llu\n", #name, help, #name,           \
	        (__builtin_strcmp(#name, "connections_active") == 0 || __builtin_strcmp(#name, "regional_upstream_connections") == 0) ? "gauge" : "counter", #name,                       \
	        (unsigned long long)KX_METRIC_VALUE(name));
	KX_METRICS(KX_METRIC_PRINT)
#undef KX_METRIC_PRINT
	static const char *const dir[2] = {"to_broker", "from_broker"};
	int cnt = atomic_load_explicit(&kx_region_cnt, memory_order_acquire);
	fputs("# HELP kstretch_region_bytes bytes between clients and brokers per (client region, broker region, "
	      "direction)\n# TYPE kstretch_region_bytes counter\n",
	      out);
	for (int c = 0; c < cnt; c++)
		for (int b = 0; b < cnt; b++)
			for (int d = 0; d < 2; d++) {
				uint64_t n = kx_region_bytes_sum(c, b, d);
				if (!n)
					continue;
				fputs("kstretch_region_bytes{client_region=\"", out);
				kx_prom_label(out, kx_region_name(c));
				fputs("\",broker_region=\"", out);
				kx_prom_label(out, kx_region_name(b));
				fprintf(out, "\",direction=\"%s\"} %llu\n", dir[d], (unsigned long long)n);
			}
}
