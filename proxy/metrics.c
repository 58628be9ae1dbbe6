#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "text.h"
#include "api.h"
#include "cost.h"

struct kx_metrics_shard {
	struct kx_metrics m;
	atomic_uint_fast64_t region_bytes[KX_REGIONS_MAX][KX_REGIONS_MAX][2];
	struct kx_labelled l;
} __attribute__((aligned(64)));

static struct kx_metrics_shard kx_shards[KX_METRIC_SHARDS];
_Thread_local struct kx_metrics *kx_metrics_here = &kx_shards[0].m;
_Thread_local atomic_uint_fast64_t (*kx_region_bytes_here)[KX_REGIONS_MAX][2] = kx_shards[0].region_bytes;
_Thread_local struct kx_labelled *kx_labelled_here = &kx_shards[0].l;

void kx_metrics_thread(int worker_id)
{
	struct kx_metrics_shard *sh = &kx_shards[1 + (unsigned)worker_id % (KX_METRIC_SHARDS - 1)];
	kx_metrics_here = &sh->m;
	kx_region_bytes_here = sh->region_bytes;
	kx_labelled_here = &sh->l;
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

static void kx_metrics_write_labelled(FILE *out);

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
	      "direction) {client_region,broker_region,direction}\n# TYPE kstretch_region_bytes counter\n",
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
	kx_metrics_write_labelled(out);
}

/* ---- labelled metrics ------------------------------------------------------ */

/* Finite bucket bounds, in ns and as Prometheus prints them (seconds). */
static const uint64_t kx_lat_bounds_ns[KX_LAT_BUCKETS] = {
    50000,    100000,   250000,    500000,    1000000,   2500000,    5000000,    10000000,
    25000000, 50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000, 10000000000};
static const char *const kx_lat_bounds_text[KX_LAT_BUCKETS] = {
    "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
    "0.025", "0.05",   "0.1",     "0.25",   "0.5",   "1",      "2.5",   "10"};

uint64_t kx_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void kx_metrics_latency(int16_t api_key, enum kx_lat_part part, uint64_t ns)
{
	struct kx_api_stats *a = &kx_labelled_here->api[kx_api_slot(api_key)];
	int b = 0;
	while (b < KX_LAT_BUCKETS && ns > kx_lat_bounds_ns[b])
		b++;
	atomic_fetch_add_explicit(&a->lat_sum_ns[part], ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&a->lat[part][b], 1, memory_order_relaxed);
}

void kx_timing_done(int16_t api_key, const struct kx_timing *t, uint64_t now)
{
	if (!t->in_ns || !t->sent_ns)
		return; /* never went upstream (answered by kstretch, or not timed) */
	uint64_t answered = t->answered_ns > t->sent_ns ? t->answered_ns : t->sent_ns;
	if (now < answered)
		now = answered;
	kx_metrics_latency(api_key, KX_LAT_UPSTREAM, answered - t->sent_ns);
	kx_metrics_latency(api_key, KX_LAT_KSTRETCH, (t->sent_ns - t->in_ns) + (now - answered));
}

static const char *const kx_close_names[KX_CLOSE_CAUSE_CNT] = {
#define KX_CLOSE_NAME(name, help) #name,
    KX_CLOSE_CAUSES(KX_CLOSE_NAME)
#undef KX_CLOSE_NAME
};

/* The reason strings the sessions close with (session.c, regional_session.c), by prefix. */
static const struct {
	const char *prefix;
	enum kx_close_cause cause;
} kx_close_reasons[] = {
    {"client closed", KX_CLOSE_client_closed},
    {"closed after lingering", KX_CLOSE_client_closed},
    {"client error", KX_CLOSE_client_error},
    {"client write error", KX_CLOSE_client_error},
    {"error while lingering", KX_CLOSE_client_error},
    {"idle timeout", KX_CLOSE_idle_timeout},
    {"request timeout", KX_CLOSE_request_timeout},
    {"write timeout", KX_CLOSE_write_timeout},
    {"protocol error", KX_CLOSE_protocol_error},
    {"no PROXY header", KX_CLOSE_protocol_error},
    {"TLS", KX_CLOSE_tls},
    {"connect failed", KX_CLOSE_upstream_lost},
    {"upstream", KX_CLOSE_upstream_lost},
    {"broker", KX_CLOSE_upstream_lost},
    {"node left", KX_CLOSE_upstream_lost},
    {"timeout", KX_CLOSE_upstream_lost},
    {"linger timeout", KX_CLOSE_client_closed},
    {"shutdown", KX_CLOSE_shutdown},
    {"stopping", KX_CLOSE_shutdown},
    {"out of memory", KX_CLOSE_out_of_memory},
    {"no broker", KX_CLOSE_upstream_lost},
    {"answer failed", KX_CLOSE_upstream_lost},
    {"connection error", KX_CLOSE_upstream_lost},
    {"write error", KX_CLOSE_upstream_lost},
};

enum kx_close_cause kx_close_cause_of(const char *why)
{
	enum kx_close_cause best = KX_CLOSE_other;
	size_t best_len = 0;
	for (size_t i = 0; why && i < sizeof(kx_close_reasons) / sizeof(kx_close_reasons[0]); i++) {
		size_t n = strlen(kx_close_reasons[i].prefix);
		if (n > best_len && strncmp(why, kx_close_reasons[i].prefix, n) == 0) {
			best = kx_close_reasons[i].cause;
			best_len = n;
		}
	}
	return best;
}

void kx_metrics_closed_as(enum kx_close_cause c)
{
	atomic_fetch_add_explicit(&kx_labelled_here->closed[c < KX_CLOSE_CAUSE_CNT ? c : KX_CLOSE_other], 1,
	                          memory_order_relaxed);
}

void kx_metrics_closed(const char *why)
{
	kx_metrics_closed_as(kx_close_cause_of(why));
}

/* Broker node ids by slot (slot 0: bootstrap and overflow), registered like region names. */
static int32_t kx_broker_nodes[KX_BROKER_SLOTS];
static atomic_int kx_broker_cnt = 1;
static pthread_mutex_t kx_broker_lock = PTHREAD_MUTEX_INITIALIZER;

static int kx_broker_find(int32_t node_id, int cnt)
{
	for (int i = 1; i < cnt; i++)
		if (kx_broker_nodes[i] == node_id)
			return i;
	return 0;
}

static int kx_broker_slot(int32_t node_id)
{
	if (node_id < 0)
		return 0;
	int i = kx_broker_find(node_id, atomic_load_explicit(&kx_broker_cnt, memory_order_acquire));
	if (i)
		return i;
	pthread_mutex_lock(&kx_broker_lock);
	int cnt = atomic_load_explicit(&kx_broker_cnt, memory_order_relaxed);
	i = kx_broker_find(node_id, cnt);
	if (!i && cnt < KX_BROKER_SLOTS) {
		kx_broker_nodes[cnt] = node_id;
		atomic_store_explicit(&kx_broker_cnt, cnt + 1, memory_order_release);
		i = cnt;
	}
	pthread_mutex_unlock(&kx_broker_lock);
	return i;
}

void kx_metrics_upstream(int32_t node_id, bool ok)
{
	int i = kx_broker_slot(node_id);
	atomic_fetch_add_explicit(ok ? &kx_labelled_here->upstream_connects[i]
	                             : &kx_labelled_here->upstream_failures[i],
	                          1, memory_order_relaxed);
}

static atomic_uint_fast64_t kx_topology_refreshes[2]; /* failed, ok: not on the data path */

void kx_metrics_topology_refresh(bool ok)
{
	atomic_fetch_add_explicit(&kx_topology_refreshes[ok], 1, memory_order_relaxed);
}

static const struct kx_cost_rules *kx_cost;

void kx_metrics_set_cost(const struct kx_cost_rules *r)
{
	kx_cost = r;
}

#define KX_SUM_SHARDS(expr)                                                                                            \
	({                                                                                                             \
		uint64_t n_ = 0;                                                                                       \
		for (size_t i_ = 0; i_ < KX_METRIC_SHARDS; i_++) {                                                     \
			const struct kx_labelled *l_ = &kx_shards[i_].l;                                               \
			n_ += atomic_load_explicit(&l_->expr, memory_order_relaxed);                                   \
		}                                                                                                      \
		n_;                                                                                                    \
	})

static const char *kx_api_label(unsigned slot)
{
	const struct kp_api *a = slot < KX_API_SLOTS - 1 ? kp_api_get((int16_t)slot) : NULL;
	return a ? a->name : "other";
}

static void kx_write_api_counters(FILE *out)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} c[] = {
	    {"kstretch_api_requests_total", "client requests read, by API {api}",
	     offsetof(struct kx_api_stats, requests)},
	    {"kstretch_api_responses_total", "answers handed to clients, by API {api}",
	     offsetof(struct kx_api_stats, responses)},
	    {"kstretch_api_rewrites_total",
	     "answers kstretch rewrote (addresses, versions, regional merges), by API {api}",
	     offsetof(struct kx_api_stats, rewrites)},
	    {"kstretch_api_decode_errors_total", "requests or answers kstretch could not decode, by API {api}",
	     offsetof(struct kx_api_stats, decode_errors)},
	};
	for (size_t k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
		fprintf(out, "# HELP %s %s\n# TYPE %s counter\n", c[k].name, c[k].help, c[k].name);
		for (unsigned a = 0; a < KX_API_SLOTS; a++) {
			uint64_t n = 0;
			for (size_t i = 0; i < KX_METRIC_SHARDS; i++)
				n += atomic_load_explicit(
				    (atomic_uint_fast64_t *)((char *)&kx_shards[i].l.api[a] + c[k].off),
				    memory_order_relaxed);
			if (n)
				fprintf(out, "%s{api=\"%s\"} %llu\n", c[k].name, kx_api_label(a),
				        (unsigned long long)n);
		}
	}
}

static void kx_write_latency(FILE *out)
{
	static const char *const part[2] = {"kstretch", "upstream"};
	fputs("# HELP kstretch_request_duration_seconds time per request and answer, by API: part=kstretch inside "
	      "kstretch (read to sent upstream, answer read to handed to the client), part=upstream at the "
	      "brokers (sent to its last answer read); buckets 50 us to 10 s {api,part,le}\n# TYPE "
	      "kstretch_request_duration_seconds histogram\n",
	      out);
	for (unsigned a = 0; a < KX_API_SLOTS; a++)
		for (int p = 0; p < 2; p++) {
			uint64_t b[KX_LAT_BUCKETS + 1], count = 0;
			for (int k = 0; k <= KX_LAT_BUCKETS; k++)
				count += b[k] = KX_SUM_SHARDS(api[a].lat[p][k]);
			if (!count)
				continue;
			uint64_t sum_ns = KX_SUM_SHARDS(api[a].lat_sum_ns[p]), cum = 0;
			const char *api = kx_api_label(a);
			for (int k = 0; k <= KX_LAT_BUCKETS; k++) {
				cum += b[k];
				fprintf(
				    out,
				    "kstretch_request_duration_seconds_bucket{api=\"%s\",part=\"%s\",le=\"%s\"} %llu\n",
				    api, part[p], k < KX_LAT_BUCKETS ? kx_lat_bounds_text[k] : "+Inf",
				    (unsigned long long)cum);
			}
			fprintf(out, "kstretch_request_duration_seconds_sum{api=\"%s\",part=\"%s\"} %.9f\n", api,
			        part[p], (double)sum_ns / 1e9);
			fprintf(out, "kstretch_request_duration_seconds_count{api=\"%s\",part=\"%s\"} %llu\n", api,
			        part[p], (unsigned long long)count);
		}
}

static void kx_write_closed_and_brokers(FILE *out)
{
	fputs("# HELP kstretch_connections_closed_total client connections closed, by cause {cause}\n"
	      "# TYPE kstretch_connections_closed_total counter\n",
	      out);
	for (int c = 0; c < KX_CLOSE_CAUSE_CNT; c++)
		fprintf(out, "kstretch_connections_closed_total{cause=\"%s\"} %llu\n", kx_close_names[c],
		        (unsigned long long)KX_SUM_SHARDS(closed[c]));
	static const char *const name[2] = {"kstretch_upstream_connects_total",
	                                    "kstretch_upstream_connect_errors_total"};
	static const char *const help[2] = {
	    "upstream connections made, by broker (bootstrap: a bootstrap server) {broker}",
	    "upstream connections that failed or timed out, by broker {broker}"};
	int cnt = atomic_load_explicit(&kx_broker_cnt, memory_order_acquire);
	for (int k = 0; k < 2; k++) {
		fprintf(out, "# HELP %s %s\n# TYPE %s counter\n", name[k], help[k], name[k]);
		for (int i = 0; i < cnt; i++) {
			uint64_t n = k ? KX_SUM_SHARDS(upstream_failures[i]) : KX_SUM_SHARDS(upstream_connects[i]);
			if (!n && i)
				continue;
			if (i)
				fprintf(out, "%s{broker=\"%d\"} %llu\n", name[k], kx_broker_nodes[i],
				        (unsigned long long)n);
			else
				fprintf(out, "%s{broker=\"bootstrap\"} %llu\n", name[k], (unsigned long long)n);
		}
	}
	fputs("# HELP kstretch_topology_refreshes_total Metadata fetches of the readiness check (admin.c), by result "
	      "{result}\n"
	      "# TYPE kstretch_topology_refreshes_total counter\n",
	      out);
	for (int ok = 1; ok >= 0; ok--)
		fprintf(out, "kstretch_topology_refreshes_total{result=\"%s\"} %llu\n", ok ? "ok" : "failed",
		        (unsigned long long)atomic_load_explicit(&kx_topology_refreshes[ok], memory_order_relaxed));
}

static void kx_write_region_pair(FILE *out, const char *name, int c, int b, double v, bool money)
{
	fprintf(out, "%s{client_region=\"", name);
	kx_prom_label(out, kx_region_name(c));
	fputs("\",broker_region=\"", out);
	kx_prom_label(out, kx_region_name(b));
	fprintf(out, money ? "\"} %.17g\n" : "\"} %.0f\n", v);
}

static void kx_write_cost(FILE *out)
{
	int cnt = atomic_load_explicit(&kx_region_cnt, memory_order_acquire);
	fputs("# HELP kstretch_cross_region_cost_total what the bytes between regions cost at cost.per.gb "
	      "(requests priced client region to broker region, answers broker region to client region) "
	      "{client_region,broker_region}\n"
	      "# TYPE kstretch_cross_region_cost_total counter\n",
	      out);
	for (int c = 1; c < cnt; c++)
		for (int b = 1; b < cnt; b++) {
			if (c == b)
				continue;
			double up = kx_cost_price(kx_cost, kx_region_name(c), kx_region_name(b));
			double down = kx_cost_price(kx_cost, kx_region_name(b), kx_region_name(c));
			uint64_t to = kx_region_bytes_sum(c, b, KX_TO_BROKER),
			         from = kx_region_bytes_sum(c, b, KX_FROM_BROKER);
			if (to || from)
				kx_write_region_pair(out, "kstretch_cross_region_cost_total", c, b,
				                     ((double)to * up + (double)from * down) / 1e9, true);
		}
	fputs("# HELP kstretch_cross_region_cost_avoided_total what the Fetch answers kstretch kept in the client's "
	      "region would have cost from their leader's region (broker_region: the leader's) at cost.per.gb "
	      "{client_region,broker_region}\n"
	      "# TYPE kstretch_cross_region_cost_avoided_total counter\n",
	      out);
	for (int c = 1; c < cnt; c++)
		for (int l = 1; l < cnt; l++) {
			uint64_t n = c == l ? 0 : KX_SUM_SHARDS(fetch_kept_local[c][l]);
			if (n)
				kx_write_region_pair(
				    out, "kstretch_cross_region_cost_avoided_total", c, l,
				    (double)n * kx_cost_price(kx_cost, kx_region_name(l), kx_region_name(c)) / 1e9,
				    true);
		}
	fputs(
	    "# HELP kstretch_fetch_bytes_kept_local Fetch answer bytes from a broker in the client's region for "
	    "partitions whose leader is in another region (broker_region: the leader's) {client_region,broker_region}\n"
	    "# TYPE kstretch_fetch_bytes_kept_local counter\n",
	    out);
	for (int c = 1; c < cnt; c++)
		for (int l = 1; l < cnt; l++) {
			uint64_t n = c == l ? 0 : KX_SUM_SHARDS(fetch_kept_local[c][l]);
			if (n)
				kx_write_region_pair(out, "kstretch_fetch_bytes_kept_local", c, l, (double)n, false);
		}
}

static void kx_metrics_write_labelled(FILE *out)
{
	kx_write_api_counters(out);
	kx_write_latency(out);
	kx_write_closed_and_brokers(out);
	kx_write_cost(out);
}
