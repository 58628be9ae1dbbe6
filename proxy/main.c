/*
 * kstretch: Kafka wire-protocol proxy for stretched clusters.
 *
 * Mapped mode: learn the brokers from a bootstrap server, open one listener
 * per broker (and the bootstrap listener) on every worker, and forward each
 * client connection to the broker its listener maps to (session.h). SIGTERM
 * or SIGINT: stop accepting, drain in-flight requests, exit 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/crypto.h>
#include <xxhash.h>

#include "admin.h"
#include "bootstrap.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "regional_nodes.h"
#include "regional_session.h"
#include "sasl_server.h"
#include "text.h"
#include "tls.h"
#include "topology.h"
#include "topology_print.h"
#include "upgrade.h"
#include "worker.h"

#define KX_EXIT_CONFIG 2

static void kx_usage(FILE *out)
{
	fputs("usage: kstretch [--config FILE] [--KEY VALUE | --KEY=VALUE]...\n"
	      "       kstretch --check [...]          validate, ask the cluster (connect.timeout.ms), print the\n"
	      "                                       topology and the listeners it would open; non-zero: the reason\n"
	      "       kstretch --check --offline [...] validate without connecting (CI, manifests)\n"
	      "       kstretch --check-config [...]   validate, print the effective configuration\n"
	      "       kstretch --print-topology [...] ask the cluster; print brokers, racks, regions, listeners\n"
	      "       kstretch --list-metrics          print /metrics as it reads at start: every metric, its help\n"
	      "       kstretch --list-keys             every key, its default and help, tab-separated\n"
	      "       kstretch --sasl-user NAME [--iterations N] < PASSWORD-FILE\n"
	      "                                        print NAME's sasl.users lines (SCRAM-SHA-256, -512)\n"
	      "       kstretch --help | --version\n"
	      "\n"
	      "A Kafka wire-protocol proxy for stretched (multi-rack, multi-region) clusters.\n"
	      "Every configuration key can be set in a .properties FILE (key=value) or as a flag\n"
	      "with dots written as dashes; a flag wins over the file.\n"
	      "\n"
	      "Keys:\n",
	      out);
	kx_config_print_help(out);
}

static volatile sig_atomic_t kx_stop_requested;

static void kx_on_signal_flag(int sig)
{
	(void)sig;
	kx_stop_requested = 1;
}

static void kx_on_signal(evutil_socket_t sig, short events, void *arg)
{
	struct event_base *base = arg;
	(void)events;
	kx_info("received %s: closing listeners, draining in-flight requests", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	event_base_loopbreak(base);
}

static const struct kx_config *kx_running_cfg;
static const struct kx_config *kx_first_cfg; /* main()'s: not freed */
static int kx_argc;
static char **kx_argv;
static struct kx_admin *kx_admin_running;

static void kx_fit_fd_limit(struct kx_config *cfg, bool quiet);
static void kx_regional_listen(struct kx_config *cfg, bool quiet);

static struct kx_worker *kx_workers;
static long kx_worker_cnt;

/*
 * upgrade.socket: a new process serves on every listener now. This one stops
 * accepting at once, lets the connections it accepted last send their first
 * request (a client writes it right after connecting: closing such a
 * connection now would fail it) for KX_HANDOVER_GRACE_MS, then stops as on
 * SIGTERM, draining within shutdown.drain.ms.
 */
#define KX_HANDOVER_GRACE_MS 1000

static void kx_on_handover_grace(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static void kx_on_handed_over(void *arg)
{
	struct event_base *base = arg;
	for (long i = 0; i < kx_worker_cnt; i++)
		kx_worker_stop_accepting(&kx_workers[i]);
	struct timeval tv = {.tv_sec = KX_HANDOVER_GRACE_MS / 1000,
	                     .tv_usec = (suseconds_t)(KX_HANDOVER_GRACE_MS % 1000) * 1000};
	if (event_base_once(base, -1, EV_TIMEOUT, kx_on_handover_grace, base, &tv) != 0)
		event_base_loopbreak(base);
}

/* Configurations replaced by SIGHUP, freed once every worker took a newer one. */
#define KX_RETIRED_MAX 64
static struct kx_config *kx_retired[KX_RETIRED_MAX];
static size_t kx_retired_cnt;

static void kx_free_retired(void)
{
	size_t kept = 0;
	for (size_t i = 0; i < kx_retired_cnt; i++) {
		bool used = false;
		for (long w = 0; w < kx_worker_cnt && !used; w++)
			used = kx_worker_uses_config(&kx_workers[w], kx_retired[i]);
		if (used)
			kx_retired[kept++] = kx_retired[i];
		else
			free(kx_retired[i]);
	}
	kx_retired_cnt = kept;
}

struct kx_reload {
	int changed, restart;
};

static void kx_reload_change(const char *key, const char *was, const char *now, bool restart, void *arg)
{
	struct kx_reload *r = arg;
	r->changed++;
	r->restart += restart;
	if (restart)
		kx_error("received SIGHUP: %s changed (%s -> %s): that takes a restart, or an upgrade through "
		         "upgrade.socket",
		         key, was ? was : "unset", now ? now : "unset");
	else
		kx_info("received SIGHUP: %s: %s -> %s", key, was ? was : "unset", now ? now : "unset");
}

/*
 * SIGHUP: the configuration is read again (the same --config file and
 * flags). Limits, timeouts, placement and region rules, the listener map
 * (broker.port.base and .map: mapped mode's listeners move, their
 * connections stay), log.level and the TLS certificates change in place:
 * each worker takes the new configuration for what it does next, and the
 * topology is derived again with its rules. A configuration that does not
 * parse, that changes what only a restart can (kx_config_changes), or whose
 * TLS files do not load is refused with a log line, and the running one stays.
 */
static void kx_on_sighup(evutil_socket_t sig, short events, void *arg)
{
	(void)sig;
	(void)events;
	(void)arg;
	kx_free_retired();
	if (kx_retired_cnt == KX_RETIRED_MAX) {
		kx_error("received SIGHUP: %d earlier configurations still in use by a worker; the running one stays",
		         KX_RETIRED_MAX);
		return;
	}
	struct kx_config *next = calloc(1, sizeof(*next));
	struct kx_config_error err = {0};
	enum kx_config_action action = KX_CONFIG_RUN;
	char why[512];
	if (!next) {
		kx_error("received SIGHUP: out of memory reading the configuration; the running one stays");
		return;
	}
	if (!kx_config_parse_args(next, kx_argc, kx_argv, &action, &err) || action != KX_CONFIG_RUN) {
		kx_error("received SIGHUP: the configuration is refused (%s); the running one stays", err.msg);
		free(next);
		return;
	}
	kx_fit_fd_limit(next, true);
	if (next->mode == KX_MODE_REGIONAL)
		kx_regional_listen(next, true);
	struct kx_reload r = {0};
	if (strcmp(kx_config_upstream_sasl_password(kx_running_cfg), kx_config_upstream_sasl_password(next)) != 0)
		kx_reload_change("upstream.sasl.password", "(hidden)", "(hidden)", true, &r); /* passwords print hidden */
	if (kx_config_changes(kx_running_cfg, next, kx_reload_change, &r) < 0 || r.restart) {
		kx_error("received SIGHUP: the configuration is refused (%s); the running one stays",
		         r.restart ? "it changes what only a restart can: see above" : "out of memory comparing it");
		free(next);
		return;
	}
	bool tls = next->tls_cert[0] || next->upstream_tls;
	if (tls && !kx_tls_reload(next, why, sizeof(why))) {
		kx_error("received SIGHUP: TLS reload failed, the previous certificates stay in use: %s; the running "
		         "configuration stays",
		         why);
		free(next);
		return;
	}
	kx_log_set_level(next->log_level);
	kx_log_set_format(next->log_format);
	kx_admin_set_config(kx_admin_running, next);
	for (long i = 0; i < kx_worker_cnt; i++)
		kx_worker_set_config(&kx_workers[i], next);
	struct kr_topology_rules rules;
	kx_config_topology(next, &rules);
	kx_topology_apply_rules(&rules); /* listen ports and regions again: workers move their listeners */
	if (kx_running_cfg != kx_first_cfg)
		kx_retired[kx_retired_cnt++] = (struct kx_config *)kx_running_cfg;
	kx_running_cfg = next;
	kx_info("received SIGHUP: configuration reloaded, %d settings changed%s", r.changed,
	        tls ? "; TLS certificates and keys reloaded (new connections use them; established ones keep theirs)"
	            : "");
}

static void kx_on_topology(void *arg)
{
	(void)arg;
	for (long i = 0; i < kx_worker_cnt; i++)
		kx_worker_notify_topology(&kx_workers[i]);
}

/*
 * mode=regional: what does not apply or is not built there yet is refused with
 * one line saying why, and clients are served on this node's entry in
 * regional.nodes (node.id) unless listen is set.
 */
/* mode=regional: clients are served on this node's entry in regional.nodes (node.id) unless listen is set. */
static void kx_regional_listen(struct kx_config *cfg, bool quiet)
{
	int i = cfg->node_id >= 0 ? kr_regional_nodes_index(&cfg->regional_nodes, cfg->node_id) : -1;
	if (!kx_config_is_set(cfg, "listen") && i >= 0) {
		const struct kr_regional_node *n = &cfg->regional_nodes.nodes[i];
		snprintf(cfg->listen.host, sizeof(cfg->listen.host), "%s", n->host);
		cfg->listen.port = n->port;
		if (!quiet)
			kx_info("mode=regional: listening on node %d's address in regional.nodes, %s:%u",
			        (int)cfg->node_id, cfg->listen.host, cfg->listen.port);
	}
}

static bool kx_regional_setup(struct kx_config *cfg)
{
	const char *why = NULL;
	if (cfg->listener_mode == KX_LISTENER_SNI)
		why = "listener.mode=sni: regional mode serves one virtual cluster on one port; SNI "
		      "routing per broker does not apply";
	if (why) {
		kx_error("mode=regional: %s", why);
		return false;
	}
	if (cfg->sasl_users[0]) {
		static struct kx_sasl_users users;
		char err[512];
		if (!kx_sasl_users_load(cfg->sasl_users, &users, err, sizeof(err))) {
			kx_error("sasl.users: %s", err);
			return false;
		}
		kx_regional_set_users(&users);
		kx_info("mode=regional: clients authenticate with SASL (%zu users in %s)%s", users.cnt, cfg->sasl_users,
		        cfg->sasl_mtls_identity ? ", or with their verified TLS certificate" : "");
	} else if (cfg->sasl_mtls_identity) {
		kx_info("mode=regional: clients authenticate with their verified TLS certificate");
	}
	if (cfg->upstream_sasl_mechanism != KX_SASL_NONE)
		kx_info("mode=regional: shared upstream connections authenticate as %s (%s)",
		        cfg->upstream_sasl_username, kx_sasl_mechanism_name(cfg->upstream_sasl_mechanism));
	kx_regional_listen(cfg, false);
	return true;
}

static int kx_run(struct kx_config *cfg)
{
	long workers = cfg->workers ? cfg->workers : sysconf(_SC_NPROCESSORS_ONLN);
	struct sigaction sa = {.sa_handler = kx_on_signal_flag};
	int rc = 0;

	if (workers < 1)
		workers = 1;
	kx_info("kstretch %s starting: mode=%s workers=%ld listen=%s:%u advertised.host=%s", KSTRETCH_VERSION,
	        cfg->mode == KX_MODE_MAPPED ? "mapped" : "regional", workers, cfg->listen.host, cfg->listen.port,
	        kx_config_advertised_host(cfg));
	if (cfg->mode == KX_MODE_REGIONAL && !kx_regional_setup(cfg))
		return KX_EXIT_CONFIG;
	kx_fit_fd_limit(cfg, false);
	char why[512];
	if (!kx_tls_setup(cfg, why, sizeof(why))) {
		kx_error("TLS: %s", why);
		return KX_EXIT_CONFIG;
	}
	kx_running_cfg = kx_first_cfg = cfg;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN); /* until the event loop handles it (a reload) */
	evthread_use_pthreads();

	/* Until the event loop runs, a signal only sets a flag (bootstrap polls it). */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	struct kx_topology *t = kx_bootstrap_topology(cfg, &kx_stop_requested);
	if (!t) {
		kx_info("stopped before the cluster answered");
		return 0;
	}
	kx_topology_publish(t);

	struct event_base *base = event_base_new();
	struct event *ev_term = base ? evsignal_new(base, SIGTERM, kx_on_signal, base) : NULL;
	struct event *ev_int = base ? evsignal_new(base, SIGINT, kx_on_signal, base) : NULL;
	struct event *ev_hup = base ? evsignal_new(base, SIGHUP, kx_on_sighup, NULL) : NULL;
	if (!ev_term || !ev_int || !ev_hup || evsignal_add(ev_term, NULL) || evsignal_add(ev_int, NULL) ||
	    evsignal_add(ev_hup, NULL)) {
		kx_error("cannot install signal handlers");
		return 1;
	}
	/* mode=regional: the region's node set, published before any client is served. */
	struct evdns_base *nodes_dns = NULL;
	struct kx_nodes_refresher *nodes = NULL;
	if (cfg->mode == KX_MODE_REGIONAL) {
		struct kx_nodes_source src;
		kx_nodes_source_from_config(cfg, &src);
		if (!src.fixed && !(nodes_dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS))) {
			kx_error("regional.nodes.dns: cannot start a DNS resolver (no usable /etc/resolv.conf?)");
			return 1;
		}
		if (!(nodes = kx_nodes_refresher_new(base, nodes_dns, &src))) {
			kx_error("mode=regional: cannot start reading the node set (out of memory)");
			return 1;
		}
	}
	/* upgrade.socket: the running kstretch's listening sockets, when one runs (before any is bound anew). */
	size_t took = 0;
	if (cfg->upgrade_socket[0] && !kx_upgrade_take(cfg->upgrade_socket, &took, why, sizeof(why))) {
		kx_error("upgrade: %s; not starting (the running process serves on)", why);
		return 1;
	}
	if (took)
		kx_info(
		    "upgrade: took over %zu listening sockets from the running process (it serves until this one is "
		    "ready)",
		    took);
	kx_workers = calloc((size_t)workers, sizeof(*kx_workers));
	if (!kx_workers) {
		kx_error("out of memory for %ld workers", workers);
		return 1;
	}
	for (kx_worker_cnt = 0; kx_worker_cnt < workers; kx_worker_cnt++) {
		if (!kx_worker_init(&kx_workers[kx_worker_cnt], (int)kx_worker_cnt, cfg)) {
			kx_error("worker %ld: cannot start (see above)", kx_worker_cnt);
			rc = 1;
			kx_worker_free(&kx_workers[kx_worker_cnt]);
			break;
		}
	}
	if (rc == 0 && took)
		kx_worker_adopt_rest(&kx_workers[kx_worker_cnt - 1]); /* the old process had more workers */
	kx_topology_on_publish(kx_on_topology, NULL);
	struct kx_admin *admin = rc == 0 ? kx_admin_start(base, cfg) : NULL;
	kx_admin_running = admin;
	if (rc == 0 && !admin)
		rc = 1;
	long started = 0;
	for (; rc == 0 && started < kx_worker_cnt; started++) {
		if (!kx_worker_start(&kx_workers[started])) {
			kx_error("cannot start worker thread %ld", started);
			rc = 1;
			break;
		}
	}
	struct kx_upgrade *upgrade = NULL;
	if (rc == 0 && cfg->upgrade_socket[0]) {
		kx_upgrade_ready(); /* the previous process (if any) lets go of the listeners and drains */
		kx_inherited_close_rest();
		if (!(upgrade =
		          kx_upgrade_listen(base, cfg->upgrade_socket, kx_on_handed_over, base, why, sizeof(why))))
			kx_warn("upgrade.socket %s; a successor cannot take this process's listeners over", why);
	}
	if (rc == 0) {
		kx_info("ready: %ld workers", kx_worker_cnt);
		if (!kx_stop_requested)
			event_base_dispatch(base);
	}
	for (long i = 0; i < started; i++)
		kx_worker_stop(&kx_workers[i]);
	for (long i = 0; i < started; i++)
		kx_worker_join(&kx_workers[i]);
	kx_upgrade_free(upgrade);
	kx_topology_on_publish(NULL, NULL);
	kx_nodes_refresher_free(nodes);
	kx_admin_running = NULL;
	kx_admin_free(admin);
	for (long i = 0; i < kx_worker_cnt; i++)
		kx_worker_free(&kx_workers[i]);
	free(kx_workers);
	kx_topology_clear();
	kx_nodes_clear();
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	kx_tls_teardown();
	if (nodes_dns)
		evdns_base_free(nodes_dns, 1);
	event_base_free(base);
	kx_info("stopped: %llu connections, %llu requests, %llu responses rewritten, %llu bytes copied of %llu from "
	        "brokers",
	        (unsigned long long)KX_METRIC_VALUE(connections_accepted),
	        (unsigned long long)KX_METRIC_VALUE(requests_forwarded),
	        (unsigned long long)KX_METRIC_VALUE(responses_rewritten),
	        (unsigned long long)KX_METRIC_VALUE(bytes_copied), (unsigned long long)KX_METRIC_VALUE(bytes_from_brokers));
	return rc;
}

/*
 * --print-topology: the bootstrap's first look at the cluster (brokers and
 * racks), what kstretch makes of it (regions, listeners, client placement),
 * printed, then exit. Gives up after connect.timeout.ms without an answer.
 */
static int kx_ask_cluster(const struct kx_config *cfg, struct kx_topology **out)
{
	struct sigaction sa = {.sa_handler = kx_on_signal_flag};
	struct itimerval limit = {
	    .it_value = {.tv_sec = cfg->connect_timeout_ms / 1000, .tv_usec = (cfg->connect_timeout_ms % 1000) * 1000}};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	char why[512];
	if (!kx_tls_setup(cfg, why, sizeof(why))) {
		kx_error("TLS: %s", why);
		return KX_EXIT_CONFIG;
	}
	setitimer(ITIMER_REAL, &limit, NULL);
	struct kx_topology *t = kx_bootstrap_topology(cfg, &kx_stop_requested);
	kx_tls_teardown();
	setitimer(ITIMER_REAL, &(struct itimerval){0}, NULL);
	if (!t) {
		kx_error("no bootstrap server answered within connect.timeout.ms (%d ms)", cfg->connect_timeout_ms);
		return 1;
	}
	*out = t;
	return 0;
}

static int kx_print_topology(const struct kx_config *cfg)
{
	struct kx_topology *t = NULL;
	int rc = kx_ask_cluster(cfg, &t);
	if (rc != 0)
		return rc;
	kx_topology_print(t, cfg, stdout);
	kx_topology_put(t);
	return 0;
}

/* ---- kstretch --check [--offline] ---------------------------------------- */

/* The listeners of a mapped kstretch as far as the configuration alone says. */
static void kx_check_print_mapped(const struct kx_config *cfg)
{
	const char *adv = kx_config_advertised_host(cfg);
	printf("listeners (offline: the brokers the cluster names decide which of these open):\n");
	printf("  %s:%u bootstrap\n", cfg->listen.host, cfg->listen.port);
	if (cfg->listener_mode == KX_LISTENER_SNI) {
		printf("  every broker on %s:%u, picked by the TLS server name %s (advertised as that name)\n",
		       cfg->listen.host, cfg->listen.port, cfg->sni_host_pattern);
		return;
	}
	for (size_t i = 0; i < cfg->port_map_cnt; i++)
		printf("  %s:%u node %d (broker.port.map; advertised as %s:%u)\n", cfg->listen.host,
		       cfg->port_map[i].port, cfg->port_map[i].node_id, adv, cfg->port_map[i].port);
	printf("  %s:%d+N node N (broker.port.base; advertised as %s)\n", cfg->listen.host, cfg->broker_port_base, adv);
}

/* mode=regional: the region's nodes and where this one serves its clients. */
static void kx_check_print_regional(const struct kx_config *cfg)
{
	printf("regional: region %s, node.id %s", cfg->region, cfg->node_id >= 0 ? "" : "not set");
	if (cfg->node_id >= 0)
		printf("%d", (int)cfg->node_id);
	printf(", clients on %s:%u\n", cfg->listen.host, cfg->listen.port);
	if (cfg->regional_nodes_dns.host[0]) {
		printf("  nodes: read from DNS %s:%u every %d ms\n", cfg->regional_nodes_dns.host,
		       cfg->regional_nodes_dns.port, cfg->regional_nodes_refresh_ms);
		return;
	}
	for (size_t i = 0; i < cfg->regional_nodes.cnt; i++) {
		const struct kr_regional_node *n = &cfg->regional_nodes.nodes[i];
		bool v6 = strchr(n->host, ':') != NULL;
		printf("  node %d %s%s%s:%u%s\n", (int)n->id, v6 ? "[" : "", n->host, v6 ? "]" : "", n->port,
		       n->id == cfg->node_id ? " (this node)" : "");
	}
}

/*
 * --check: the configuration is valid (kx_config_parse_args said so), the
 * checks a start makes before listening pass, and (unless offline) a
 * bootstrap server answers within connect.timeout.ms, with upstream TLS and
 * SASL as configured; prints what kstretch would open. 0 or the reason on
 * stderr and a non-zero exit.
 */
static int kx_check(struct kx_config *cfg, bool offline)
{
	if (cfg->mode == KX_MODE_REGIONAL && !kx_regional_setup(cfg))
		return KX_EXIT_CONFIG;
	printf("configuration: valid (mode=%s)\n", cfg->mode == KX_MODE_MAPPED ? "mapped" : "regional");
	printf("admin: http://%s:%u\n", cfg->admin_listen.host, cfg->admin_listen.port);
	if (offline) {
		if (cfg->mode == KX_MODE_REGIONAL)
			kx_check_print_regional(cfg);
		else
			kx_check_print_mapped(cfg);
		printf("check: OK (offline: the cluster was not asked; certificate files were not read)\n");
		return 0;
	}
	struct kx_topology *t = NULL;
	int rc = kx_ask_cluster(cfg, &t);
	if (rc != 0)
		return rc;
	kx_topology_print(t, cfg, stdout);
	if (cfg->mode == KX_MODE_REGIONAL)
		kx_check_print_regional(cfg);
	printf("check: OK (%zu brokers answered through %s)\n", t->broker_cnt, cfg->upstream_tls ? "TLS" : "plaintext");
	kx_topology_put(t);
	return 0;
}

/*
 * Each connection holds two descriptors (client and broker), and a pipe
 * (two more) per direction once it splices. Raises the soft limit to the
 * hard one; max.connections 0 (the default) becomes what that limit holds,
 * and a larger explicit value gets a warning.
 */
static void kx_fit_fd_limit(struct kx_config *cfg, bool quiet)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		rl.rlim_cur = rl.rlim_max = 1024;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	rlim_t fits = rl.rlim_cur == RLIM_INFINITY ? 10000000 : (rl.rlim_cur > 128 ? (rl.rlim_cur - 64) / 2 : 32);
	if (fits > 10000000)
		fits = 10000000;
	if (cfg->max_connections == 0) {
		cfg->max_connections = (int)fits;
		if (!quiet)
			kx_debug("max.connections=%d (file descriptor limit %llu)", cfg->max_connections,
			         (unsigned long long)rl.rlim_cur);
	} else if ((rlim_t)cfg->max_connections > fits && !quiet) {
		kx_warn("max.connections=%d needs about %llu file descriptors; the limit is %llu: past about %llu "
		        "connections, accepts fail (and are retried) while existing connections go on",
		        cfg->max_connections, (unsigned long long)cfg->max_connections * 2 + 64,
		        (unsigned long long)rl.rlim_cur, (unsigned long long)fits);
	}
}

/*
 * kstretch --sasl-user NAME [--iterations N]: reads NAME's password from
 * stdin (its first line) and prints its sasl.users lines, SCRAM-SHA-256 and
 * SCRAM-SHA-512, each with a fresh random salt. No password is stored.
 */
static int kx_sasl_user_lines(int argc, char **argv)
{
	const char *name = argc > 2 ? argv[2] : "";
	unsigned long iterations = 4096;
	if (argc == 5 && strcmp(argv[3], "--iterations") == 0) {
		char *end = NULL;
		iterations = strtoul(argv[4], &end, 10);
		if (*end || iterations < KX_SCRAM_MIN_ITERATIONS || iterations > KX_SCRAM_MAX_ITERATIONS) {
			fprintf(stderr, "kstretch: --iterations: %s is not in %d..%d\n", argv[4],
			        KX_SCRAM_MIN_ITERATIONS, KX_SCRAM_MAX_ITERATIONS);
			return KX_EXIT_CONFIG;
		}
	} else if (argc != 3) {
		fputs("usage: kstretch --sasl-user NAME [--iterations N] < password-file\n", stderr);
		return KX_EXIT_CONFIG;
	}
	size_t nlen = strlen(name);
	if (!nlen || nlen > KX_SCRAM_USER_MAX || strpbrk(name, " \t") || !kx_text_clean((const uint8_t *)name, nlen)) {
		fprintf(stderr,
		        "kstretch: --sasl-user: the name must be 1..%d bytes of UTF-8 without spaces or control "
		        "characters\n",
		        KX_SCRAM_USER_MAX);
		return KX_EXIT_CONFIG;
	}
	char pw[KX_SASL_PASSWORD_MAX + 2];
	if (!fgets(pw, sizeof(pw), stdin)) {
		fputs("kstretch: --sasl-user: no password on stdin (its first line is the password)\n", stderr);
		return KX_EXIT_CONFIG;
	}
	size_t plen = strcspn(pw, "\r\n");
	pw[plen] = '\0';
	int rc = 0;
	for (int h = KX_SCRAM_SHA_256; h <= KX_SCRAM_SHA_512 && rc == 0; h++) {
		struct kx_scram_cred c;
		char line[1024];
		if (!plen || !kx_scram_cred_make(&c, (enum kx_scram_hash)h, pw, plen, NULL, 0, (uint32_t)iterations) ||
		    !kx_scram_cred_line(name, &c, line, sizeof(line))) {
			fputs("kstretch: --sasl-user: an empty password, or no randomness from OpenSSL\n", stderr);
			rc = 1;
		} else {
			fputs(line, stdout);
		}
		OPENSSL_cleanse(&c, sizeof(c));
	}
	OPENSSL_cleanse(pw, sizeof(pw));
	return rc;
}

int main(int argc, char **argv)
{
	static struct kx_config cfg;
	struct kx_config_error err;
	enum kx_config_action action;

	if (argc >= 2 && strcmp(argv[1], "--sasl-user") == 0)
		return kx_sasl_user_lines(argc, argv);
	if (!kx_config_parse_args(&cfg, argc, argv, &action, &err)) {
		fprintf(stderr, "kstretch: config error: %s\n", err.msg);
		return KX_EXIT_CONFIG;
	}
	switch (action) {
	case KX_CONFIG_HELP: kx_usage(stdout); return 0;
	case KX_CONFIG_VERSION:
		printf("kstretch %s (libevent %s, %s, xxHash %u)\n", KSTRETCH_VERSION, event_get_version(),
		       OpenSSL_version(OPENSSL_VERSION), XXH_versionNumber());
		return 0;
	case KX_CONFIG_LIST_METRICS: kx_metrics_write(stdout); return 0;
	case KX_CONFIG_CHECK: kx_config_print(&cfg, stdout); return 0;
	case KX_CONFIG_LIST_KEYS: kx_config_print_keys(stdout); return 0;
	default: break;
	}
	kx_log_set_level(cfg.log_level);
	kx_log_set_format(cfg.log_format);
	switch (action) {
	case KX_CONFIG_PRINT_TOPOLOGY: return kx_print_topology(&cfg);
	case KX_CONFIG_CHECK_CLUSTER: return kx_check(&cfg, false);
	case KX_CONFIG_CHECK_OFFLINE: return kx_check(&cfg, true);
	default: break;
	}
	kx_argc = argc;
	kx_argv = argv;
	int rc = kx_run(&cfg);
	for (size_t i = 0; i < kx_retired_cnt; i++)
		free(kx_retired[i]);
	if (kx_running_cfg != &cfg)
		free((struct kx_config *)kx_running_cfg);
	return rc;
}
