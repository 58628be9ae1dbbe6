/*
 * config: kstretch's configuration — one table of keys, a .properties file
 * reader and the command-line flags that mirror it.
 *
 * Every key is settable in a file (`--config FILE`, Java .properties syntax:
 * `key=value`, `key: value` or `key value`, `#`/`!` comments, backslash
 * continuation) and as a flag with the dots written as dashes
 * (`bootstrap.servers` <-> `--bootstrap-servers VALUE` or `=VALUE`). A flag
 * wins over the file whatever their order on the command line. An unknown key
 * or a bad value is an error naming the key and where it was set.
 */
#ifndef KX_CONFIG_H
#define KX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cost.h"
#include <stdio.h>

#include "log.h"
#include "placement.h"
#include "region.h"
#include "regional.h"
#include "topology.h"

#define KX_HOST_MAX          256 /* a DNS name is at most 253 characters */
#define KX_NAME_MAX          64  /* racks, regions, region.map patterns */
#define KX_BOOTSTRAP_MAX     64
#define KX_PORT_MAP_MAX      1024
#define KX_REGION_RULES_MAX  64
#define KX_RACK_CIDR_MAX     256
#define KX_LISTENER_RACK_MAX 256
#define KX_CONFIG_FILE_MAX   (1024 * 1024)
#define KX_PATH_MAX          1024
#define KX_CIPHERS_MAX       1024
#define KX_SASL_USER_MAX     256
#define KX_SASL_PASSWORD_MAX 1024
#define KX_REGIONAL_REFRESH_DEFAULT_MS 30000 /* regional.nodes.refresh.ms */
#define KX_REGIONAL_FETCH_WAIT_DEFAULT_MS 100 /* regional.fetch.wait.max.ms */

/* proxy.protocol: the header an L4 balancer in front sends first (0: none expected). */
enum kx_proxy_protocol {
	KX_PROXY_OFF,
	KX_PROXY_V1,
	KX_PROXY_V2,
};

/* tls.protocols: the TLS versions kstretch speaks (a set). */
enum {
	KX_TLS_V12 = 1,
	KX_TLS_V13 = 2,
};

/* tls.client.auth: whether clients present a certificate (mTLS). */
enum kx_tls_client_auth {
	KX_TLS_AUTH_NONE,
	KX_TLS_AUTH_REQUESTED, /* asked for; a client without one is served, one that fails verification is refused */
	KX_TLS_AUTH_REQUIRED,  /* a client without a valid one is refused in the handshake */
};

/* tls.client.rack.from: the client certificate attribute naming its rack. */
enum kx_cert_attr {
	KX_CERT_ATTR_NONE,
	KX_CERT_ATTR_CN,  /* subject commonName */
	KX_CERT_ATTR_OU,  /* subject organizationalUnitName (any of them) */
	KX_CERT_ATTR_SAN, /* a subjectAltName DNS entry */
};

/* listener.mode: how clients reach each broker through kstretch. */
enum kx_listener_mode {
	KX_LISTENER_PORTS, /* a port per broker (broker.port.base + id, broker.port.map) */
	KX_LISTENER_SNI,   /* one TLS port; the name in each ClientHello picks the broker (sni.host.pattern) */
};

/* upstream.sasl.mechanism: how kstretch's own connection to a bootstrap server authenticates. */
enum kx_sasl_mechanism {
	KX_SASL_NONE,
	KX_SASL_PLAIN,
	KX_SASL_SCRAM_SHA_256,
	KX_SASL_SCRAM_SHA_512,
};

enum kx_mode {
	KX_MODE_MAPPED,   /* sidecar: one listener per broker */
	KX_MODE_REGIONAL, /* load-balancer tier: a virtual regional cluster */
};

struct kx_hostport {
	char host[KX_HOST_MAX];
	uint16_t port;
};


_Static_assert(KX_NAME_MAX == KR_NAME_MAX, "config and routing names have one length");
_Static_assert(KX_HOST_MAX == KR_HOST_MAX, "config and routing host names have one length");

struct kx_config {
	struct kx_hostport bootstrap[KX_BOOTSTRAP_MAX];
	size_t bootstrap_cnt;
	struct kx_hostport listen;
	char advertised_host[KX_HOST_MAX]; /* "" = the host of `listen` */
	int broker_port_base;
	struct kr_port_mapping port_map[KX_PORT_MAP_MAX];
	size_t port_map_cnt;
	enum kx_mode mode;
	enum kx_proxy_protocol proxy_protocol; /* every client connection starts with that header */
	enum kx_listener_mode listener_mode;
	char sni_host_pattern[KX_HOST_MAX]; /* listener.mode=sni: a broker's advertised name */
	char rack[KX_NAME_MAX];                                  /* "" = unknown */
	struct kr_region_rule region_rules[KX_REGION_RULES_MAX]; /* region.map, in order */
	size_t region_rule_cnt;
	struct kr_cidr_rule rack_cidrs[KX_RACK_CIDR_MAX]; /* rack.cidr, in order */
	size_t rack_cidr_cnt;
	struct kr_listener_rack listener_racks[KX_LISTENER_RACK_MAX]; /* listener.rack.<port>, in order set */
	size_t listener_rack_cnt;
	bool fetch_rack_inject;  /* Fetch v11+: an empty RackId gets the client's rack */
	bool fetch_cut_through;  /* Fetch v16-18 forwarded as v15: answers flow instead of being held whole */
	bool fetch_prefer_local; /* Fetch v11+: PreferredReadReplica -> an in-sync replica in the client's region */
	int fetch_prefer_local_backoff_ms; /* a partition whose client fell back is not redirected for this long */
	int workers;                       /* 0 = one per CPU */
	struct kx_hostport admin_listen;
	/* Operations (admin.c, metrics.c): */
	char admin_token[KX_SASL_PASSWORD_MAX + 1];      /* admin.token; never printed */
	char admin_token_file[KX_PATH_MAX];              /* admin.token.file */
	char admin_file_token[KX_SASL_PASSWORD_MAX + 1]; /* what that file held, read when the key is set */
	int metadata_max_age_ms;                         /* /readyz: the cluster answered Metadata this recently */
	struct kx_cost_rules cost;                       /* cost.per.gb */
	int64_t max_frame_bytes;
	int max_held_request_bytes; /* a request rewritten whole (Fetch RackId) beyond this passes through as it is */
	int max_connections;
	int max_inflight_requests;
	int connect_timeout_ms;
	int idle_timeout_ms;
	int request_timeout_ms;
	int write_timeout_ms; /* answers wait and the client's socket takes nothing for this long: closed */
	int shutdown_drain_ms;
	char upgrade_socket[KX_PATH_MAX]; /* upgrade.socket: "" = none (upgrade.h) */
	enum kx_log_level log_level;
	enum kx_log_format log_format;
	/* TLS towards clients (tls.*; on when tls.cert is set) and towards the brokers (upstream.tls.*). */
	char tls_cert[KX_PATH_MAX], tls_key[KX_PATH_MAX];
	unsigned tls_protocols; /* KX_TLS_V12 | KX_TLS_V13 */
	char tls_ciphers[KX_CIPHERS_MAX];
	char tls_client_ca[KX_PATH_MAX];
	enum kx_tls_client_auth tls_client_auth;
	int tls_handshake_timeout_ms;
	enum kx_cert_attr tls_client_rack_from;
	char tls_client_rack_prefix[KX_NAME_MAX];
	bool upstream_tls;
	char upstream_tls_ca[KX_PATH_MAX], upstream_tls_cert[KX_PATH_MAX], upstream_tls_key[KX_PATH_MAX];
	bool upstream_tls_verify_hostname;
	/* SASL on kstretch's own bootstrap connection (upstream.sasl.*); clients authenticate themselves. */
	enum kx_sasl_mechanism upstream_sasl_mechanism;
	char upstream_sasl_username[KX_SASL_USER_MAX + 1];
	char upstream_sasl_password[KX_SASL_PASSWORD_MAX + 1]; /* upstream.sasl.password; never printed */
	char upstream_sasl_password_file[KX_PATH_MAX];
	char upstream_sasl_file_password[KX_SASL_PASSWORD_MAX + 1]; /* what that file held, read when the key is set */
	/* mode=regional: clients authenticate to kstretch (sasl.users, sasl.mechanisms, sasl.mtls.identity). */
	char sasl_users[KX_PATH_MAX];
	unsigned sasl_mechanisms; /* bit (1u << enum kx_sasl_mechanism) per mechanism offered */
	bool sasl_mtls_identity;
	/* mode=regional: the region this tier serves and its kstretch nodes (a fixed list, or read from DNS). */
	char region[KX_NAME_MAX];                /* "" = not set */
	struct kr_regional_nodes regional_nodes; /* regional.nodes, finished (sorted, checked); cnt 0 = not set */
	struct kx_hostport regional_nodes_dns;   /* regional.nodes.dns NAME:PORT; host "" = not set */
	int regional_nodes_refresh_ms;           /* how often regional.nodes.dns is read again */
	int32_t node_id;                         /* node.id; -1 = not set */
	int regional_upstream_connections;       /* per worker, per broker, shared by the worker's clients */
	int regional_fetch_wait_max_ms;          /* the longest MaxWaitMs a Fetch part asks of its broker */

	bool is_set[64]; /* per table entry: set by a file or a flag */
};

/* What a caller gets back on failure: one line naming the key and where. */
struct kx_config_error {
	char msg[512];
};

/* What main() should do after kx_config_parse_args(). */
enum kx_config_action {
	KX_CONFIG_RUN,
	KX_CONFIG_HELP,
	KX_CONFIG_VERSION,
	KX_CONFIG_LIST_METRICS,   /* print /metrics as it reads at start (every name, HELP and TYPE), exit */
	KX_CONFIG_CHECK,          /* validate, print the effective configuration, exit */
	KX_CONFIG_PRINT_TOPOLOGY, /* ask the cluster, print brokers, racks, regions, listeners, exit */
	KX_CONFIG_CHECK_CLUSTER,  /* --check: validate, ask the cluster, print topology and listener map, exit */
	KX_CONFIG_CHECK_OFFLINE,  /* --check --offline: validate and print the listener map without connecting */
	KX_CONFIG_LIST_KEYS,      /* --list-keys: every key, its default and help, tab-separated (docs/man_page.py) */
};

void kx_config_defaults(struct kx_config *cfg);

/* Set one key from text; `where` names the source in error messages. */
bool kx_config_set(struct kx_config *cfg, const char *key, const char *value, const char *where,
                   struct kx_config_error *err);

/* Read .properties text; `name` is used in error messages (FILE:LINE). */
bool kx_config_load_buffer(struct kx_config *cfg, const char *name, const char *data, size_t len,
                           struct kx_config_error *err);
bool kx_config_load_file(struct kx_config *cfg, const char *path, struct kx_config_error *err);

/*
 * Defaults, then `--config FILE` if given, then every other flag, then
 * kx_config_validate(). On success *action says what to do next.
 */
bool kx_config_parse_args(struct kx_config *cfg, int argc, char **argv, enum kx_config_action *action,
                          struct kx_config_error *err);

/* Checks across keys (required keys, clashing ports, wildcard listen). */
bool kx_config_validate(const struct kx_config *cfg, struct kx_config_error *err);

/* Whether a key of the table was set by a file or a flag (not left at its default). */
bool kx_config_is_set(const struct kx_config *cfg, const char *key);

/* "PLAIN", "SCRAM-SHA-256", ...: a mechanism's name ("none" for none). */
const char *kx_sasl_mechanism_name(enum kx_sasl_mechanism m);

/* The password of upstream.sasl.password or upstream.sasl.password.file ("": none). */
const char *kx_config_upstream_sasl_password(const struct kx_config *cfg);

/* The host written into rewritten broker addresses. */
const char *kx_config_advertised_host(const struct kx_config *cfg);

/*
 * The client placement rules of cfg (rack, listener.rack.<port>, rack.cidr,
 * region.map) for kr_client_place(); p points into cfg, which must outlive it.
 */
void kx_config_placement(const struct kx_config *cfg, struct kr_placement *p);

/*
 * The rules a topology snapshot is built with (listener ports, region.map,
 * kstretch's log) for kx_topology_new() and the merges; r points into cfg,
 * which must outlive it.
 */
void kx_config_topology(const struct kx_config *cfg, struct kr_topology_rules *r);

/* Writes the effective configuration as a .properties file. */
void kx_config_print(const struct kx_config *cfg, FILE *out);

/* One setting that differs between two configurations (was/now NULL: not set on that side). */
typedef void (*kx_config_change_fn)(const char *key, const char *was, const char *now, bool restart, void *arg);

/*
 * Calls fn for every setting whose printed value differs between was and
 * now (passwords print hidden, so a changed password is not seen); restart:
 * a key a running process cannot change (listeners, workers, upstream
 * identity, the regional node set). Returns how many differ; -1 when out
 * of memory.
 */
int kx_config_changes(const struct kx_config *was, const struct kx_config *now, kx_config_change_fn fn, void *arg);

/* Writes the key reference (used by --help). */
void kx_config_print_help(FILE *out);

/*
 * Writes the key reference for tools (--list-keys): a line per key,
 * NAME<TAB>DEFAULT<TAB>HELP; a key family's NAME ends in its member's
 * placeholder (listener.rack.PORT).
 */
void kx_config_print_keys(FILE *out);

#endif
