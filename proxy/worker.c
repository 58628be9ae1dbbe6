#include "worker.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "metrics.h"
#include "regional_session.h"
#include "sni.h"
#include "tls.h"
#include "topology.h"
#include "upgrade.h"

#define KX_DRAIN_POLL_MS 50

/* Resolves the listen host once (numeric or name) to a socket address. */
static bool kx_listen_addr(const struct kx_config *cfg, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *res = NULL;
	char portstr[8];
	snprintf(portstr, sizeof(portstr), "%u", port);
	int r = getaddrinfo(cfg->listen.host, portstr, &hints, &res);
	if (r != 0 || !res) {
		kx_error("listen: cannot resolve %s: %s", cfg->listen.host, gai_strerror(r));
		return false;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return true;
}

/* How long listeners rest when accept runs out of descriptors or memory. */
#define KX_ACCEPT_PAUSE_MS 100

static void kx_on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct kx_listener *l = arg;
	struct kx_worker *w = l->worker;
	(void)lev;
	if (KX_METRIC_VALUE(connections_active) >= (uint64_t)w->cfg->max_connections) {
		KX_METRIC_ADD(connections_refused, 1);
		time_t now = time(NULL);
		if (now != w->refused_logged) { /* one line a second, not one per connection */
			w->refused_logged = now;
			kx_warn("listener port %u: max.connections (%d) open; closing new connections", l->port,
			        w->cfg->max_connections);
		}
		evutil_closesocket(fd);
		return;
	}
	if (w->cfg->mode == KX_MODE_REGIONAL)
		kx_regional_start(w, fd, sa, salen, l->port);
	else
		kx_session_start(w, fd, sa, salen, l->node_id, l->port);
}

static void kx_listeners_enable(struct kx_worker *w, bool on)
{
	for (size_t i = 0; i < w->listener_cnt; i++)
		if (on)
			evconnlistener_enable(w->listeners[i].lev);
		else
			evconnlistener_disable(w->listeners[i].lev);
}

static void kx_on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct kx_worker *w = arg;
	if (!w->stopping && !w->handed_over)
		kx_listeners_enable(w, true);
}

static void kx_on_handed_over(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct kx_worker *w = arg;
	w->handed_over = true;
	kx_listeners_enable(w, false);
}

static void kx_on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct kx_listener *l = arg;
	struct kx_worker *w = l->worker;
	int err = EVUTIL_SOCKET_ERROR();
	(void)lev;
	struct kx_log_id id = {.listener = l->port, .broker = -1};
	kx_log_limited(KX_LOG_WARN, &id, "listener port %u: accept failed: %s; existing connections go on", l->port,
	               evutil_socket_error_to_string(err));
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		/* The pending connection stays pending: without a rest, every loop
		 * turn would try (and log) again. */
		struct timeval t = {0, KX_ACCEPT_PAUSE_MS * 1000};
		kx_listeners_enable(w, false);
		evtimer_add(w->accept_pause, &t);
	}
}

/* A listener for node_id (-1: bootstrap) on port: on socket inherited (handed over: upgrade.h), else
 * one handed over for the port if any is left, else a new one. */
static bool kx_worker_listen_on(struct kx_worker *w, int32_t node_id, uint16_t port, evutil_socket_t inherited)
{
	if (w->listener_cnt == w->listener_cap) {
		size_t cap = w->listener_cap ? w->listener_cap * 2 : 16;
		struct kx_listener *nl = realloc(w->listeners, cap * sizeof(*nl));
		if (!nl)
			return false;
		/* Listeners point at their slot: re-point them after the move. */
		for (size_t i = 0; i < w->listener_cnt; i++)
			evconnlistener_set_cb(nl[i].lev, kx_on_accept, &nl[i]);
		w->listeners = nl;
		w->listener_cap = cap;
	}
	struct sockaddr_storage ss;
	socklen_t len;
	if (!kx_listen_addr(w->cfg, port, &ss, &len))
		return false;
	struct kx_listener *l = &w->listeners[w->listener_cnt];
	l->worker = w;
	l->node_id = node_id;
	l->port = port;
	/* A socket the previous process handed over (upgrade.h) is listening already. */
	evutil_socket_t fd = inherited >= 0 ? inherited : kx_inherited_take(KX_LISTEN_KAFKA, port);
	if (fd >= 0)
		l->lev = evconnlistener_new(w->base, kx_on_accept, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 0, fd);
	else
		l->lev = evconnlistener_new_bind(w->base, kx_on_accept, l,
		                                 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT,
		                                 1024, (struct sockaddr *)&ss, (int)len);
	if (!l->lev && fd >= 0)
		evutil_closesocket(fd);
	if (!l->lev) {
		kx_error("listen %s:%u for %s%d: %s", w->cfg->listen.host, port, node_id < 0 ? "bootstrap" : "node ",
		         node_id < 0 ? 0 : node_id, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		return false;
	}
	evconnlistener_set_error_cb(l->lev, kx_on_accept_error);
	kx_listen_register(evconnlistener_get_fd(l->lev), KX_LISTEN_KAFKA, port);
	w->listener_cnt++;
	return true;
}

static bool kx_worker_listen(struct kx_worker *w, int32_t node_id, uint16_t port)
{
	for (size_t i = 0; i < w->listener_cnt; i++)
		if (w->listeners[i].node_id == node_id)
			return true;
	return kx_worker_listen_on(w, node_id, port, -1);
}

void kx_worker_adopt_rest(struct kx_worker *w)
{
	size_t n = w->listener_cnt; /* the listeners it has: those it adds are of the same ports */
	for (size_t i = 0; i < n; i++) {
		int32_t node_id = w->listeners[i].node_id;
		uint16_t port = w->listeners[i].port;
		evutil_socket_t fd;
		while ((fd = kx_inherited_take(KX_LISTEN_KAFKA, port)) >= 0)
			if (!kx_worker_listen_on(w, node_id, port, fd))
				break; /* logged; the socket was closed */
	}
}

/* Closes w's listeners (their sockets: the process's last reference, unless a successor holds them). */
static void kx_worker_close_listeners(struct kx_worker *w)
{
	for (size_t i = 0; i < w->listener_cnt; i++) {
		kx_listen_unregister(evconnlistener_get_fd(w->listeners[i].lev));
		evconnlistener_free(w->listeners[i].lev);
	}
	w->listener_cnt = 0;
}

/* listener.mode=sni: no port per broker; worker 0 logs each broker's name once. */
static void kx_worker_log_sni_names(struct kx_worker *w)
{
	struct kx_topology *t = kx_topology_get();
	for (size_t i = 0; w->id == 0 && t && i < t->broker_cnt; i++) {
		const struct kx_broker *b = &t->brokers[i];
		char name[KX_HOST_MAX];
		bool had = false;
		for (size_t k = 0; k < w->sni_logged_cnt; k++)
			had = had || w->sni_logged[k] == b->node_id;
		if (had || w->sni_logged_cnt >= sizeof(w->sni_logged) / sizeof(w->sni_logged[0]))
			continue;
		w->sni_logged[w->sni_logged_cnt++] = b->node_id;
		if (kr_sni_name(w->cfg->sni_host_pattern, b->node_id, b->rack, b->region, name, sizeof(name)))
			kx_info("node %d (rack %s) %s:%u (SNI) -> %s:%u", b->node_id, b->rack[0] ? b->rack : "-", name,
			        w->cfg->listen.port, b->host, b->port);
	}
	kx_topology_put(t);
}

/* Opens a listener for every broker of the current topology that has none. */
static bool kx_worker_sync_listeners(struct kx_worker *w)
{
	bool ok = true;
	if (w->cfg->listener_mode == KX_LISTENER_SNI) {
		kx_worker_log_sni_names(w);
		return true;
	}
	struct kx_topology *t = kx_topology_get();
	for (size_t i = 0; t && i < t->broker_cnt; i++) {
		const struct kx_broker *b = &t->brokers[i];
		bool had = false;
		for (size_t k = 0; k < w->listener_cnt;) {
			struct kx_listener *l = &w->listeners[k];
			if (l->node_id == b->node_id && b->listen_port && l->port != b->listen_port) {
				/* broker.port.map or .base changed (SIGHUP): its connections go on; new ones come to
				 * the new port */
				if (w->id == 0)
					kx_info("node %d: listener port %u -> %u (established connections stay)",
					        b->node_id, l->port, b->listen_port);
				kx_listen_unregister(evconnlistener_get_fd(l->lev));
				evconnlistener_free(l->lev);
				w->listeners[k] = w->listeners[--w->listener_cnt];
				if (k < w->listener_cnt) /* the one moved into slot k points at its old slot */
					evconnlistener_set_cb(w->listeners[k].lev, kx_on_accept, &w->listeners[k]);
				continue;
			}
			had = had || l->node_id == b->node_id;
			k++;
		}
		if (had)
			continue;
		if (!b->listen_port) {
			kx_error("node %d has no listener port (broker.port.base + id > 65535)", b->node_id);
			ok = false;
			continue;
		}
		if (!kx_worker_listen(w, b->node_id, b->listen_port)) {
			ok = false;
			continue;
		}
		if (w->id == 0)
			kx_info("node %d (rack %s) %s:%u -> %s:%u", b->node_id, b->rack[0] ? b->rack : "-",
			        kx_config_advertised_host(w->cfg), b->listen_port, b->host, b->port);
	}
	kx_topology_put(t);
	return ok;
}

static void kx_on_sync(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct kx_worker *w = arg;
	if (!w->stopping && !w->handed_over && w->cfg->mode != KX_MODE_REGIONAL) /* regional: one listener */
		kx_worker_sync_listeners(w);
}

static void kx_on_config(evutil_socket_t fd, short what, void *arg);
static void kx_on_drain_tick(evutil_socket_t fd, short what, void *arg);

static void kx_on_stop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct kx_worker *w = arg;
	if (w->stopping)
		return;
	w->stopping = true;
	kx_info("worker %d: stopping: listeners closed, %u sessions left to drain", w->id, w->session_cnt);
	kx_worker_close_listeners(w);
	/* Sessions that owe nothing close now; the others after their last answer. */
	for (struct kx_session *s = w->sessions, *next; s; s = next) {
		next = s->next;
		kx_session_shutdown(s);
	}
	w->drain_deadline_ms = w->cfg->shutdown_drain_ms;
	kx_on_drain_tick(-1, 0, w);
}

/*
 * Waits for the sessions to close themselves (in-flight requests answered,
 * answers flushed), up to shutdown.drain.ms.
 */
static void kx_on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct kx_worker *w = arg;
	uint32_t inflight = 0;
	for (struct kx_session *s = w->sessions; s; s = s->next)
		inflight += kx_session_inflight(s);
	if (w->session_cnt == 0 || w->drain_deadline_ms <= 0) {
		if (w->session_cnt)
			kx_warn("worker %d: drain time over with %u sessions open, %u requests in flight; closing",
			        w->id, w->session_cnt, inflight);
		while (w->sessions)
			kx_session_close(w->sessions, "shutdown");
		/* Not loopbreak: let the loop finish this turn's callbacks. */
		event_base_loopexit(w->base, NULL);
		return;
	}
	w->drain_deadline_ms -= KX_DRAIN_POLL_MS;
	struct timeval tv = {0, KX_DRAIN_POLL_MS * 1000};
	evtimer_add(w->drain_timer, &tv);
}

/*
 * mode=regional: the shared upstream pool, and this node as answers name it:
 * its entry in regional.nodes (node.id), else listen (advertised.host) with
 * node.id or the id its address gives.
 */
static void kx_worker_regional_init(struct kx_worker *w)
{
	const struct kx_config *cfg = w->cfg;
	kx_pool_init(&w->pool, w, (uint32_t)cfg->regional_upstream_connections);
	kr_coordinators_init(&w->coords, KX_R_COORD_MAX_AGE_MS);
	int i = cfg->node_id >= 0 ? kr_regional_nodes_index(&cfg->regional_nodes, cfg->node_id) : -1;
	const char *host = kx_config_advertised_host(cfg);
	w->self = (struct kx_regional_self){
	    .id = cfg->node_id >= 0 ? cfg->node_id : kr_regional_node_id(host, cfg->listen.port),
	    .host = i >= 0 ? cfg->regional_nodes.nodes[i].host : host,
	    .port = i >= 0 ? cfg->regional_nodes.nodes[i].port : cfg->listen.port,
	    .rack = cfg->region,
	};
	w->rewriter.self = &w->self;
	if (w->id == 0)
		kx_info("regional node %d (%s:%u) in region %s: clients on %s:%u, %d upstream connections per broker "
		        "per worker", (int)w->self.id, w->self.host, w->self.port, cfg->region, cfg->listen.host,
		        cfg->listen.port, cfg->regional_upstream_connections);
}

bool kx_worker_init(struct kx_worker *w, int id, const struct kx_config *cfg)
{
	memset(w, 0, sizeof(*w));
	w->id = id;
	w->cfg = cfg;
	kx_rewriter_init(&w->rewriter);
	if (cfg->upstream_tls && !(w->tls_sessions = kx_tls_sessions_new()))
		return false;
	kx_config_placement(cfg, &w->placement);
	w->base = event_base_new();
	if (!w->base)
		return false;
	/* Two priorities: the stop event (0) runs before any socket event (1,
	 * the default) that became ready in the same loop turn, so a request read
	 * after SIGTERM reached the worker is not forwarded. */
	if (event_base_priority_init(w->base, 2) < 0)
		return false;
	w->dns = evdns_base_new(w->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if (!w->dns)
		w->dns = evdns_base_new(w->base, 0); /* no resolv.conf: numeric addresses still work */
	w->sync_ev = event_new(w->base, -1, 0, kx_on_sync, w);
	w->stop_ev = event_new(w->base, -1, 0, kx_on_stop, w);
	w->drain_timer = evtimer_new(w->base, kx_on_drain_tick, w);
	w->accept_pause = evtimer_new(w->base, kx_on_accept_resume, w);
	w->handover_ev = event_new(w->base, -1, 0, kx_on_handed_over, w);
	w->config_ev = event_new(w->base, -1, 0, kx_on_config, w);
	atomic_init(&w->next_cfg, cfg);
	atomic_init(&w->cfg_seen, cfg);
	if (!w->dns || !w->sync_ev || !w->stop_ev || !w->drain_timer || !w->accept_pause || !w->handover_ev ||
	    !w->config_ev || event_priority_set(w->stop_ev, 0) < 0)
		return false;
	if (!kx_worker_listen(w, -1, cfg->listen.port))
		return false;
	if (cfg->mode == KX_MODE_REGIONAL) {
		kx_worker_regional_init(w);
		return true;
	}
	if (id == 0)
		kx_info("bootstrap %s:%u -> %s:%u%s", cfg->listen.host, cfg->listen.port, cfg->bootstrap[0].host,
		        cfg->bootstrap[0].port, cfg->bootstrap_cnt > 1 ? " (and the other bootstrap.servers)" : "");
	return kx_worker_sync_listeners(w);
}

static void *kx_worker_main(void *arg)
{
	struct kx_worker *w = arg;
	kx_metrics_thread(w->id);
	event_base_dispatch(w->base);
	return NULL;
}

bool kx_worker_start(struct kx_worker *w)
{
	return pthread_create(&w->thread, NULL, kx_worker_main, w) == 0;
}

void kx_worker_notify_topology(struct kx_worker *w)
{
	event_active(w->sync_ev, EV_READ, 0);
}

/* A reloaded configuration (SIGHUP), in the worker's thread: new sessions use it. */
static void kx_on_config(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct kx_worker *w = arg;
	w->cfg = atomic_load(&w->next_cfg);
	atomic_store(&w->cfg_seen, w->cfg);
}

void kx_worker_set_config(struct kx_worker *w, const struct kx_config *cfg)
{
	atomic_store(&w->next_cfg, cfg);
	event_active(w->config_ev, EV_READ, 0);
}

bool kx_worker_uses_config(struct kx_worker *w, const struct kx_config *cfg)
{
	return atomic_load(&w->cfg_seen) == cfg;
}

void kx_worker_stop_accepting(struct kx_worker *w)
{
	event_active(w->handover_ev, EV_READ, 0);
}

void kx_worker_stop(struct kx_worker *w)
{
	event_active(w->stop_ev, EV_READ, 0);
}

void kx_worker_join(struct kx_worker *w)
{
	pthread_join(w->thread, NULL);
}

void kx_worker_free(struct kx_worker *w)
{
	while (w->sessions)
		kx_session_close(w->sessions, "exit");
	if (w->pool.worker)
		kx_pool_free(&w->pool);
	kx_rscratch_free(w->rscratch);
	if (w->rrefresh_ev)
		event_free(w->rrefresh_ev);
	w->rrefresh_ev = NULL;
	w->rscratch = NULL;
	kr_coordinators_free(&w->coords);
	kx_worker_close_listeners(w);
	free(w->listeners);
	if (w->sync_ev)
		event_free(w->sync_ev);
	if (w->stop_ev)
		event_free(w->stop_ev);
	if (w->drain_timer)
		event_free(w->drain_timer);
	if (w->accept_pause)
		event_free(w->accept_pause);
	if (w->handover_ev)
		event_free(w->handover_ev);
	if (w->config_ev)
		event_free(w->config_ev);
	if (w->dns)
		evdns_base_free(w->dns, 0);
	if (w->base)
		event_base_free(w->base);
	kx_rewriter_free(&w->rewriter);
	kx_tls_sessions_free(w->tls_sessions);
	w->tls_sessions = NULL;
	kx_topology_cache_drop(&w->topology);
	kx_nodes_cache_drop(&w->nodes);
}

void kx_worker_add_session(struct kx_worker *w, struct kx_session *s)
{
	s->prev = NULL;
	s->next = w->sessions;
	if (w->sessions)
		w->sessions->prev = s;
	w->sessions = s;
	w->session_cnt++;
}

void kx_worker_remove_session(struct kx_worker *w, struct kx_session *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		w->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	w->session_cnt--;
}
