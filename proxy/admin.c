#include "admin.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bootstrap.h"
#include "conns.h"
#include "log.h"
#include "metrics.h"
#include "text.h"
#include "topology.h"
#include "upgrade.h"

struct kx_admin {
	struct evhttp *http;
	const struct kx_config *_Atomic cfg; /* kx_admin_set_config replaces it (main thread) */
	const struct kx_config *probe_cfg;   /* the first one: what the probe uses only changes on restart */
	evutil_socket_t fd;                  /* its listening socket (-1: none yet) */
	char token[KX_SASL_PASSWORD_MAX + 1]; /* "" none */
	/* The readiness probe: its thread and what it found (atomics: read by the admin's loop). */
	pthread_t probe;
	bool probe_started;
	atomic_bool stop;
	atomic_int_fast64_t last_ok_ms; /* CLOCK_MONOTONIC ms of the last answered Metadata; 0 never */
	atomic_int brokers;             /* how many brokers that answer named */
	char last_err[600];             /* under err_lock */
	pthread_mutex_t err_lock;
};

static int64_t kx_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- readiness ----------------------------------------------------------- */

/* Every third of metadata.max.age.ms (200 ms .. 5 s): one Metadata request to the bootstrap servers. */
static void *kx_admin_probe(void *arg)
{
	struct kx_admin *a = arg;
	int every = a->probe_cfg->metadata_max_age_ms / 3;
	every = every < 200 ? 200 : every > 5000 ? 5000 : every;
	bool failing = false;
	while (!atomic_load(&a->stop)) {
		size_t n = 0;
		char err[600];
		bool ok = kx_bootstrap_probe(a->probe_cfg, &n, err, sizeof(err));
		kx_metrics_topology_refresh(ok);
		if (ok) {
			atomic_store(&a->brokers, (int)n);
			atomic_store(&a->last_ok_ms, kx_mono_ms());
			if (failing)
				kx_info("admin: the cluster answers Metadata again (%zu brokers)", n);
		} else {
			pthread_mutex_lock(&a->err_lock);
			snprintf(a->last_err, sizeof(a->last_err), "%s", err);
			pthread_mutex_unlock(&a->err_lock);
			if (!failing)
				kx_warn("admin: readiness check: no bootstrap server answers Metadata (last: %s)", err);
		}
		failing = !ok;
		for (int slept = 0; slept < every && !atomic_load(&a->stop); slept += 50)
			usleep(50 * 1000);
	}
	return NULL;
}

/* /readyz: 200 while the topology is known and the cluster answered Metadata within metadata.max.age.ms. */
static int kx_admin_ready(struct kx_admin *a, const struct kx_topology *t, FILE *out)
{
	int64_t last = atomic_load(&a->last_ok_ms), age = last ? kx_mono_ms() - last : -1;
	if (!t || !t->broker_cnt) {
		fputs("not ready: topology not known yet\n", out);
		return 503;
	}
	if (last && age <= a->cfg->metadata_max_age_ms) {
		fprintf(out,
		        "ready: %zu brokers in the topology; the cluster answered Metadata %lld ms ago (%d brokers)\n",
		        t->broker_cnt, (long long)age, atomic_load(&a->brokers));
		return 200;
	}
	pthread_mutex_lock(&a->err_lock);
	if (last)
		fprintf(out,
		        "not ready: no broker answered Metadata for %lld ms (metadata.max.age.ms %d); last error: %s\n",
		        (long long)age, a->cfg->metadata_max_age_ms, a->last_err[0] ? a->last_err : "none");
	else
		fprintf(out, "not ready: the readiness check has not reached a broker yet%s%s\n",
		        a->last_err[0] ? "; last error: " : "", a->last_err);
	pthread_mutex_unlock(&a->err_lock);
	return 503;
}

/* ---- the bearer token ----------------------------------------------------- */

/* Whether the request carries Authorization: Bearer <token> (compared in constant time). */
static bool kx_admin_authorized(const struct kx_admin *a, struct evhttp_request *req)
{
	if (!a->token[0])
		return true;
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	h += 7;
	while (*h == ' ')
		h++;
	size_t n = strlen(a->token), m = strlen(h);
	while (m > 0 && (h[m - 1] == ' ' || h[m - 1] == '\t'))
		m--;
	return m == n && CRYPTO_memcmp(h, a->token, n) == 0;
}

static void kx_admin_reply(struct evhttp_request *req, int code, const char *type, const char *body, size_t len)
{
	struct evbuffer *b = evbuffer_new();
	if (!b) {
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	evbuffer_add(b, body, len);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
	evhttp_send_reply(req, code, code == 200 ? "OK" : code == 401 ? "Unauthorized" : "Service Unavailable", b);
	evbuffer_free(b);
}

static void kx_admin_cb(struct evhttp_request *req, void *arg)
{
	struct kx_admin *a = arg;
	const char *uri = evhttp_request_get_uri(req);
	char *body = NULL;
	size_t len = 0;
	int code = 200;
	const char *type = "text/plain; charset=utf-8";

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_send_error(req, 405, "only GET");
		return;
	}
	if (strcmp(uri, "/healthz") != 0 && !kx_admin_authorized(a, req)) {
		/* /healthz stays open: a liveness probe carries no secret, and it tells nothing. */
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
		                  "Bearer realm=\"kstretch\"");
		static const char no[] =
		    "401: this endpoint wants the header Authorization: Bearer TOKEN (admin.token)\n";
		kx_admin_reply(req, 401, "text/plain; charset=utf-8", no, sizeof(no) - 1);
		return;
	}
	FILE *out = open_memstream(&body, &len);
	if (!out) {
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	struct kx_topology *t = kx_topology_get();
	if (strcmp(uri, "/metrics") == 0) {
		type = "text/plain; version=0.0.4";
		kx_metrics_write(out);
	} else if (strcmp(uri, "/healthz") == 0) {
		fputs("ok\n", out);
	} else if (strcmp(uri, "/readyz") == 0) {
		code = kx_admin_ready(a, t, out);
	} else if (strcmp(uri, "/connections") == 0) {
		type = "application/json";
		kx_conns_write_json(out);
	} else if (strcmp(uri, "/topology") == 0) {
		type = "application/json";
		fprintf(out, "{\"generation\":%llu,\"advertised_host\":", t ? (unsigned long long)t->generation : 0ULL);
		kx_json_string(out, kx_config_advertised_host(a->cfg));
		fputs(",\"brokers\":[", out);
		for (size_t i = 0; t && i < t->broker_cnt; i++) {
			const struct kx_broker *b = &t->brokers[i];
			fprintf(out, "%s{\"node_id\":%d,\"host\":", i ? "," : "", b->node_id);
			kx_json_string(out, b->host);
			fprintf(out, ",\"port\":%u,\"rack\":", b->port);
			if (b->rack[0])
				kx_json_string(out, b->rack);
			else
				fputs("null", out);
			fputs(",\"region\":", out);
			if (b->region[0])
				kx_json_string(out, b->region);
			else
				fputs("null", out);
			fprintf(out, ",\"listen_port\":%u}", b->listen_port);
		}
		fputs("]}\n", out);
	} else {
		fclose(out);
		free(body);
		kx_topology_put(t);
		evhttp_send_error(req, 404, "try /metrics, /healthz, /readyz, /topology or /connections");
		return;
	}
	kx_topology_put(t);
	fclose(out);
	kx_admin_reply(req, code, type, body, len);
	free(body);
}

struct kx_admin *kx_admin_start(struct event_base *base, const struct kx_config *cfg)
{
	struct kx_admin *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->cfg = cfg;
	a->fd = -1;
	a->probe_cfg = cfg;
	pthread_mutex_init(&a->err_lock, NULL);
	/* config.c checked them: one of the two, visible ASCII */
	snprintf(a->token, sizeof(a->token), "%s", cfg->admin_token[0] ? cfg->admin_token : cfg->admin_file_token);
	kx_metrics_set_cost(&cfg->cost);
	a->http = evhttp_new(base);
	/* The previous process's socket when it handed it over (upgrade.h), else a new one. */
	evutil_socket_t fd = kx_inherited_take(KX_LISTEN_ADMIN, cfg->admin_listen.port);
	struct evhttp_bound_socket *bound = NULL;
	if (a->http)
		bound = fd >= 0
		            ? evhttp_accept_socket_with_handle(a->http, fd)
		            : evhttp_bind_socket_with_handle(a->http, cfg->admin_listen.host, cfg->admin_listen.port);
	if (!bound) {
		if (fd >= 0)
			evutil_closesocket(fd);
		kx_error("admin: cannot listen on %s:%u", cfg->admin_listen.host, cfg->admin_listen.port);
		kx_admin_free(a);
		return NULL;
	}
	a->fd = evhttp_bound_socket_get_fd(bound);
	kx_listen_register(a->fd, KX_LISTEN_ADMIN, cfg->admin_listen.port);
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET);
	evhttp_set_gencb(a->http, kx_admin_cb, a);
	kx_info("admin: http://%s:%u/metrics /healthz /readyz /topology /connections%s", cfg->admin_listen.host,
	        cfg->admin_listen.port, a->token[0] ? " (bearer token required, /healthz open)" : "");
	if (!a->token[0] && strcmp(cfg->admin_listen.host, "127.0.0.1") != 0 &&
	    strcmp(cfg->admin_listen.host, "::1") != 0 && strcmp(cfg->admin_listen.host, "localhost") != 0)
		kx_warn("admin: listening on %s beyond loopback without admin.token: anyone who reaches it reads the "
		        "metrics, topology and connections",
		        cfg->admin_listen.host);
	if (pthread_create(&a->probe, NULL, kx_admin_probe, a) != 0) {
		kx_error("admin: cannot start the readiness check thread");
		kx_admin_free(a);
		return NULL;
	}
	a->probe_started = true;
	return a;
}

void kx_admin_set_config(struct kx_admin *a, const struct kx_config *cfg)
{
	if (!a)
		return;
	a->cfg = cfg;
	kx_metrics_set_cost(&cfg->cost); /* read at scrape, in this thread */
}

void kx_admin_free(struct kx_admin *a)
{
	if (!a)
		return;
	if (a->fd >= 0)
		kx_listen_unregister(a->fd);
	if (a->http)
		evhttp_free(a->http);
	if (a->probe_started) {
		atomic_store(&a->stop, true);
		/* A probe in the middle of a connect ends within connect.timeout.ms; past 3 s it is left behind. */
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 3;
		if (pthread_timedjoin_np(a->probe, NULL, &until) != 0) {
			kx_warn("admin: the readiness check is still waiting on a broker; not waiting for it");
			pthread_detach(a->probe);
			return; /* it still reads a: left allocated, the process is ending */
		}
	}
	explicit_bzero(a->token, sizeof(a->token));
	pthread_mutex_destroy(&a->err_lock);
	free(a);
}
