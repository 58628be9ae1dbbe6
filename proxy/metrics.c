#include "metrics.h"

#include <pthread.h>
#include <string.h>

#include "log.h"
#include "text.h"

struct kx_metrics kx_metrics;
atomic_uint_fast64_t kx_region_bytes[KX_REGIONS_MAX][KX_REGIONS_MAX][2];

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
	        __builtin_strcmp(#name, "connections_active") == 0 ? "gauge" : "counter", #name,                       \
	        (unsigned long long)atomic_load_explicit(&kx_metrics.name, memory_order_relaxed));
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
				uint_fast64_t n = atomic_load_explicit(&kx_region_bytes[c][b][d], memory_order_relaxed);
				if (!n)
					continue;
				fputs("kstretch_region_bytes{client_region=\"", out);
				kx_prom_label(out, kx_region_name(c));
				fputs("\",broker_region=\"", out);
				kx_prom_label(out, kx_region_name(b));
				fprintf(out, "\",direction=\"%s\"} %llu\n", dir[d], (unsigned long long)n);
			}
}
