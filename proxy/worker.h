/*
 * worker: one thread with its own event_base, its own SO_REUSEPORT listeners
 * (the bootstrap listener and one per broker) and the sessions it accepted.
 * A session and both its sockets live and die on one worker: no locks on the
 * data path. When the topology changes, each worker opens listeners for new
 * brokers on its own thread.
 */
#ifndef KX_WORKER_H
#define KX_WORKER_H

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "config.h"
#include "coordinators.h"
#include "regional_nodes.h"
#include "rewrite.h"
#include "pool.h"
#include "session.h"

struct kx_listener {
	struct evconnlistener *lev;
	struct kx_worker *worker;
	int32_t node_id; /* -1: bootstrap */
	uint16_t port;
};

struct kx_rreq;

struct kx_worker {
	int id;
	const struct kx_config *cfg;
	pthread_t thread;
	struct event_base *base;
	struct evdns_base *dns;
	struct event *sync_ev; /* topology changed: open listeners for new brokers */
	struct event *stop_ev; /* stop accepting and drain */
	struct event *drain_timer;
	struct event *accept_pause; /* out of descriptors: listeners rest, then try again */
	time_t refused_logged;      /* the last second a refused connection was logged */
	struct kx_listener *listeners;
	size_t listener_cnt, listener_cap;
	struct kx_session *sessions;
	uint32_t session_cnt;
	unsigned bootstrap_next;     /* round robin over bootstrap.servers */
	struct kx_rewriter rewriter; /* reused for every rewritten response */
	struct kr_placement placement; /* where clients are (rules from cfg) */
	struct kx_topology_cache topology; /* the snapshot the data path reads, lock-free */
	struct kx_nodes_cache nodes;       /* mode=regional: the region's node set, read the same way */
	struct kx_tls_sessions *tls_sessions; /* upstream TLS sessions to resume (upstream.tls) */
	int32_t sni_logged[256];              /* listener.mode=sni: brokers whose name worker 0 logged */
	size_t sni_logged_cnt;
	bool stopping;
	bool handed_over;          /* a successor accepts on its listeners now (upgrade.h): they stay off */
	struct event *handover_ev; /* kx_worker_stop_accepting, in the worker's thread */
	struct event *config_ev;   /* kx_worker_set_config, in the worker's thread */
	const struct kx_config *_Atomic next_cfg; /* the configuration it is to take */
	const struct kx_config *_Atomic cfg_seen; /* the one it took last (the main thread frees older ones) */
	int drain_deadline_ms;
	/* mode=regional: */
	struct kx_pool pool;               /* upstream connections shared by its sessions */
	struct kx_rscratch *rscratch;      /* split and merge scratch (regional_session.c) */
	uint32_t session_number;           /* sessions started: the next one's number */
	struct kx_regional_self self;      /* this node, as answers name it */
	struct kx_rreq *rrefresh;          /* the worker's own Metadata request in flight (regional_session.c) */
	struct kx_session *rrefresh_owner; /* the session it went out for (its pool entries name it) */
	int64_t rrefresh_ms;               /* when the last one went */
	uint32_t rrefresh_cnt;             /* how many went: the next goes to broker cnt mod brokers */
	bool resuming, resume_again;       /* sending parked requests (kx_rresume_all); asked again meanwhile */
	struct event *rrefresh_ev;         /* a refresh for parked requests, due when the rate allows one */
	struct kr_coordinators coords;     /* which real broker coordinates a group or transactional id */
	struct kx_rreq *rlookup;           /* the worker's own FindCoordinator in flight (regional_session.c) */
	struct kx_session *rlookup_owner;  /* the session it went out for */
};

/* Creates the worker's base and listeners (so bind errors show at start). */
bool kx_worker_init(struct kx_worker *w, int id, const struct kx_config *cfg);
bool kx_worker_start(struct kx_worker *w);
/* From any thread: topology changed / stop and drain (bounded by drain_ms). */
void kx_worker_notify_topology(struct kx_worker *w);
/* Before it starts: w also listens on every socket handed over (upgrade.h) for the ports it listens on. */
void kx_worker_adopt_rest(struct kx_worker *w);
/* SIGHUP: w takes cfg for what it does next (sessions keep their placement); cfg must outlive its use. */
void kx_worker_set_config(struct kx_worker *w, const struct kx_config *cfg);
/* Whether w has taken cfg (any thread). */
bool kx_worker_uses_config(struct kx_worker *w, const struct kx_config *cfg);
/* A successor serves on w's listening sockets (upgrade.h): w stops accepting; its sessions go on. */
void kx_worker_stop_accepting(struct kx_worker *w);
void kx_worker_stop(struct kx_worker *w);
void kx_worker_join(struct kx_worker *w);
void kx_worker_free(struct kx_worker *w);

void kx_worker_add_session(struct kx_worker *w, struct kx_session *s);
void kx_worker_remove_session(struct kx_worker *w, struct kx_session *s);

#endif
