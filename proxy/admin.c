#include "admin.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "text.h"
#include "topology.h"
#include "upgrade.h"

struct kx_admin {
	struct evhttp *http;
	const struct kx_config *_Atomic cfg; /* kx_admin_set_config replaces it (main thread) */
	evutil_socket_t fd;                  /* its listening socket (-1: none yet) */
};

static void kx_admin_reply(struct evhttp_request *req, int code, const char *type, const char *body, size_t len)
{
	struct evbuffer *b = evbuffer_new();
	if (!b) {
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	evbuffer_add(b, body, len);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Service Unavailable", b);
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
		code = t && t->broker_cnt ? 200 : 503;
		fputs(code == 200 ? "ready\n" : "topology not known yet\n", out);
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
		evhttp_send_error(req, 404, "try /metrics, /healthz, /readyz or /topology");
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
	kx_info("admin: http://%s:%u/metrics /healthz /readyz /topology", cfg->admin_listen.host,
	        cfg->admin_listen.port);
	return a;
}

void kx_admin_set_config(struct kx_admin *a, const struct kx_config *cfg)
{
	if (a)
		a->cfg = cfg;
}

void kx_admin_free(struct kx_admin *a)
{
	if (!a)
		return;
	if (a->fd >= 0)
		kx_listen_unregister(a->fd);
	if (a->http)
		evhttp_free(a->http);
	free(a);
}
