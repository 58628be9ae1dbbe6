/*
 * kstretch: Kafka wire-protocol proxy for stretched clusters.
 *
 * This build loads and validates its configuration, logs it, and runs its
 * event loop until SIGTERM or SIGINT. Forwarding (mapped mode) arrives with
 * the proxy issue; until then it says so rather than pretend.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <xxhash.h>

#include "config.h"
#include "log.h"

#define KX_EXIT_CONFIG 2

static void kx_usage(FILE *out)
{
	fputs("usage: kstretch [--config FILE] [--KEY VALUE | --KEY=VALUE]...\n"
	      "       kstretch --check-config [...]   validate, print the effective configuration\n"
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

static void kx_on_signal(evutil_socket_t sig, short events, void *arg)
{
	struct event_base *base = arg;
	(void)events;
	kx_info("received %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	event_base_loopbreak(base);
}

static int kx_run(const struct kx_config *cfg)
{
	struct event_base *base;
	struct event *ev_term, *ev_int;
	long workers = cfg->workers ? cfg->workers : sysconf(_SC_NPROCESSORS_ONLN);
	char bootstrap[KX_HOST_MAX + 16];
	int rc = 0;

	snprintf(bootstrap, sizeof(bootstrap), "%s:%u%s", cfg->bootstrap[0].host, cfg->bootstrap[0].port,
	         cfg->bootstrap_cnt > 1 ? ",..." : "");
	kx_info("kstretch %s starting: mode=%s workers=%ld bootstrap.servers=%s listen=%s:%u advertised.host=%s",
	        KSTRETCH_VERSION, cfg->mode == KX_MODE_MAPPED ? "mapped" : "regional", workers, bootstrap,
	        cfg->listen.host, cfg->listen.port, kx_config_advertised_host(cfg));
	if (cfg->mode == KX_MODE_REGIONAL) {
		kx_error("mode=regional is not implemented in this build");
		return KX_EXIT_CONFIG;
	}

	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	if (!base) {
		kx_error("event_base_new failed");
		return 1;
	}
	ev_term = evsignal_new(base, SIGTERM, kx_on_signal, base);
	ev_int = evsignal_new(base, SIGINT, kx_on_signal, base);
	if (!ev_term || !ev_int || evsignal_add(ev_term, NULL) || evsignal_add(ev_int, NULL)) {
		kx_error("cannot install signal handlers");
		rc = 1;
		goto out;
	}
	kx_warn("this build does not forward traffic yet: no listener is opened (mapped mode is not implemented)");
	if (event_base_dispatch(base) < 0) {
		kx_error("event loop failed");
		rc = 1;
	}
	kx_info("stopped");
out:
	if (ev_term)
		event_free(ev_term);
	if (ev_int)
		event_free(ev_int);
	event_base_free(base);
	return rc;
}

int main(int argc, char **argv)
{
	static struct kx_config cfg;
	struct kx_config_error err;
	enum kx_config_action action;

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
	case KX_CONFIG_CHECK: kx_config_print(&cfg, stdout); return 0;
	case KX_CONFIG_RUN: break;
	}
	kx_log_set_level(cfg.log_level);
	return kx_run(&cfg);
}
