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
#include <stdio.h>

#include "log.h"

#define KX_HOST_MAX         256 /* a DNS name is at most 253 characters */
#define KX_NAME_MAX         64  /* racks, regions, region.map patterns */
#define KX_BOOTSTRAP_MAX    64
#define KX_PORT_MAP_MAX     1024
#define KX_REGION_RULES_MAX 64
#define KX_CONFIG_FILE_MAX  (1024 * 1024)

enum kx_mode {
	KX_MODE_MAPPED,   /* sidecar: one listener per broker */
	KX_MODE_REGIONAL, /* load-balancer tier: a virtual regional cluster */
};

struct kx_hostport {
	char host[KX_HOST_MAX];
	uint16_t port;
};

struct kx_port_mapping {
	int32_t node_id;
	uint16_t port;
};

struct kx_region_rule {
	char pattern[KX_NAME_MAX]; /* glob over rack names, `*` matches any run */
	char region[KX_NAME_MAX];
};

struct kx_config {
	struct kx_hostport bootstrap[KX_BOOTSTRAP_MAX];
	size_t bootstrap_cnt;
	struct kx_hostport listen;
	char advertised_host[KX_HOST_MAX]; /* "" = the host of `listen` */
	int broker_port_base;
	struct kx_port_mapping port_map[KX_PORT_MAP_MAX];
	size_t port_map_cnt;
	enum kx_mode mode;
	char rack[KX_NAME_MAX]; /* "" = unknown */
	struct kx_region_rule region_rules[KX_REGION_RULES_MAX];
	size_t region_rule_cnt;
	int workers; /* 0 = one per CPU */
	struct kx_hostport admin_listen;
	int64_t max_frame_bytes;
	int max_inflight_requests;
	int connect_timeout_ms;
	int idle_timeout_ms;
	int shutdown_drain_ms;
	enum kx_log_level log_level;

	bool is_set[32]; /* per table entry: set by a file or a flag */
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
	KX_CONFIG_CHECK, /* validate, print the effective configuration, exit */
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

/* The host written into rewritten broker addresses. */
const char *kx_config_advertised_host(const struct kx_config *cfg);

/* Writes the effective configuration as a .properties file. */
void kx_config_print(const struct kx_config *cfg, FILE *out);

/* Writes the key reference (used by --help). */
void kx_config_print_help(FILE *out);

#endif
