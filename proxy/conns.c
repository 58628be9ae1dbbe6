#include "conns.h"

#include <pthread.h>
#include <time.h>

#include "metrics.h"
#include "session.h"
#include "text.h"

static pthread_mutex_t kx_conns_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kx_conn_stat *kx_conns_head;

void kx_conns_add(struct kx_conn_stat *st)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	st->started_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	st->started_ns = kx_now_ns();
	pthread_mutex_lock(&kx_conns_lock);
	st->prev = NULL;
	st->next = kx_conns_head;
	if (kx_conns_head)
		kx_conns_head->prev = st;
	kx_conns_head = st;
	st->registered = true;
	pthread_mutex_unlock(&kx_conns_lock);
}

void kx_conns_remove(struct kx_conn_stat *st)
{
	pthread_mutex_lock(&kx_conns_lock);
	if (st->registered) {
		if (st->prev)
			st->prev->next = st->next;
		else
			kx_conns_head = st->next;
		if (st->next)
			st->next->prev = st->prev;
		st->registered = false;
	}
	pthread_mutex_unlock(&kx_conns_lock);
}

void kx_conns_place(struct kx_conn_stat *st, const char *rack, const char *region, const char *source)
{
	pthread_mutex_lock(&kx_conns_lock);
	snprintf(st->rack, sizeof(st->rack), "%s", rack ? rack : "");
	snprintf(st->region, sizeof(st->region), "%s", region ? region : "");
	st->place_source = source;
	pthread_mutex_unlock(&kx_conns_lock);
}

void kx_conns_set_peer(struct kx_conn_stat *st, const char *addr)
{
	pthread_mutex_lock(&kx_conns_lock);
	snprintf(st->peer, sizeof(st->peer), "%s", addr ? addr : "");
	pthread_mutex_unlock(&kx_conns_lock);
}

void kx_conns_set_upstream(struct kx_conn_stat *st, const char *addr)
{
	pthread_mutex_lock(&kx_conns_lock);
	snprintf(st->upstream, sizeof(st->upstream), "%s", addr ? addr : "");
	pthread_mutex_unlock(&kx_conns_lock);
}

static void kx_json_or_null(FILE *out, const char *s)
{
	if (s && s[0])
		kx_json_string(out, s);
	else
		fputs("null", out);
}

static uint64_t kx_load(atomic_uint_fast64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static void kx_conn_json(FILE *out, struct kx_conn_stat *st, uint64_t now_ns)
{
	static const char *const kind[] = {"mapped", "regional", "pool"};
	uint64_t req = kx_load(&st->requests), ans = kx_load(&st->answers);
	fprintf(out, "{\"mode\":\"%s\",\"worker\":%d,\"started_ms\":%lld,\"age_s\":%.3f,", kind[st->kind], st->worker,
	        (long long)st->started_ms, (double)(now_ns - st->started_ns) / 1e9);
	fputs(st->kind == KX_CONN_POOL ? "\"broker_address\":" : "\"client\":", out);
	kx_json_string(out, st->peer);
	fprintf(out, ",\"requests\":%llu,\"answers\":%llu,\"in_flight\":%llu", (unsigned long long)req,
	        (unsigned long long)ans, (unsigned long long)(req > ans ? req - ans : 0));
	if (st->kind == KX_CONN_POOL) {
		fprintf(out, ",\"broker\":%d,\"local\":%s,\"bytes_to_broker\":%llu,\"bytes_from_broker\":%llu",
		        st->node_id, st->local ? "true" : "false", (unsigned long long)kx_load(&st->bytes_in),
		        (unsigned long long)kx_load(&st->bytes_out));
	} else {
		fprintf(out, ",\"listen_port\":%u,\"bytes_from_client\":%llu,\"bytes_to_client\":%llu", st->local_port,
		        (unsigned long long)kx_load(&st->bytes_in), (unsigned long long)kx_load(&st->bytes_out));
		fputs(",\"rack\":", out);
		kx_json_or_null(out, st->rack);
		fputs(",\"region\":", out);
		kx_json_or_null(out, st->region);
		fputs(",\"placement_source\":", out);
		kx_json_or_null(out, st->place_source);
	}
	if (st->kind != KX_CONN_REGIONAL) {
		if (st->kind == KX_CONN_MAPPED) {
			fprintf(out, ",\"broker\":");
			if (st->node_id >= 0)
				fprintf(out, "%d", st->node_id);
			else
				fputs("\"bootstrap\"", out);
			fputs(",\"upstream\":", out);
			kx_json_or_null(out, st->upstream);
		}
		fprintf(out, ",\"upstream_state\":\"%s\"",
		        kx_upstream_state_name(
		            (enum kx_upstream_state)atomic_load_explicit(&st->up_state, memory_order_relaxed)));
	}
	fputc('}', out);
}

void kx_conns_write_json(FILE *out)
{
	uint64_t now = kx_now_ns();
	pthread_mutex_lock(&kx_conns_lock);
	for (int pass = 0; pass < 2; pass++) {
		fputs(pass ? "],\"upstreams\":[" : "{\"clients\":[", out);
		bool first = true;
		for (struct kx_conn_stat *st = kx_conns_head; st; st = st->next) {
			if ((st->kind == KX_CONN_POOL) != (pass == 1))
				continue;
			if (!first)
				fputc(',', out);
			first = false;
			kx_conn_json(out, st, now);
		}
	}
	pthread_mutex_unlock(&kx_conns_lock);
	fputs("]}\n", out);
}
