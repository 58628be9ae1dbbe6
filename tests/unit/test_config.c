/*
 * Configuration, as a user meets it: a .properties file, flags that mirror
 * its keys, and one clear error line for anything wrong.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

static struct kx_config cfg;
static struct kx_config_error err;

/* Writes text to a fresh temporary file; returns its path (static buffer). */
static const char *write_temp(const char *text, size_t len)
{
	static char path[64];
	strcpy(path, "/tmp/kstretch-test-XXXXXX");
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	return path;
}

static bool load(const char *text)
{
	kx_config_defaults(&cfg);
	memset(&err, 0, sizeof(err));
	return kx_config_load_buffer(&cfg, "test.properties", text, strlen(text), &err);
}

/* Runs kx_config_parse_args on a NULL-terminated argument list. */
static bool args(enum kx_config_action *action, ...)
{
	char *argv[32] = {"kstretch"};
	int argc = 1;
	va_list ap;
	va_start(ap, action);
	for (char *a; (a = va_arg(ap, char *));)
		argv[argc++] = a;
	va_end(ap);
	memset(&err, 0, sizeof(err));
	return kx_config_parse_args(&cfg, argc, argv, action, &err);
}

Test(config, defaults_are_valid_except_for_the_required_bootstrap)
{
	kx_config_defaults(&cfg);
	cr_assert_str_eq(cfg.listen.host, "127.0.0.1");
	cr_assert_eq(cfg.listen.port, 9092);
	cr_assert_eq(cfg.broker_port_base, 19000);
	cr_assert_eq(cfg.mode, KX_MODE_MAPPED);
	cr_assert_eq(cfg.workers, 0);
	cr_assert_eq(cfg.max_frame_bytes, 104857600);
	cr_assert_eq(cfg.max_held_request_bytes, 1048576);
	cr_assert_eq(cfg.write_timeout_ms, 60000);
	cr_assert_eq(cfg.log_level, KX_LOG_INFO);
	cr_assert(cfg.fetch_rack_inject);
	cr_assert(cfg.fetch_cut_through);
	cr_assert(cfg.fetch_prefer_local);
	cr_assert_eq(cfg.fetch_prefer_local_backoff_ms, 30000);
	cr_assert_eq(cfg.rack_cidr_cnt, 0);
	cr_assert_eq(cfg.listener_rack_cnt, 0);
	cr_assert_str_eq(cfg.region, "");
	cr_assert_eq(cfg.regional_nodes.cnt, 0);
	cr_assert_str_eq(cfg.regional_nodes_dns.host, "");
	cr_assert_eq(cfg.regional_nodes_refresh_ms, 30000);
	cr_assert_eq(cfg.node_id, -1);
	cr_assert_str_eq(kx_config_advertised_host(&cfg), "127.0.0.1");
	cr_assert_not(kx_config_validate(&cfg, &err));
	cr_assert(strstr(err.msg, "bootstrap.servers: required"), "%s", err.msg);
}

Test(config, a_valid_file_sets_every_key)
{
	const char *text = "# a kstretch sidecar in eu\n"
	                   "! comments start with # or !\n"
	                   "\n"
	                   "bootstrap.servers = kafka-1.eu:9092, kafka-2.us:9092 ,[::1]:9093\n"
	                   "listen: 0.0.0.0:9092\n"
	                   "advertised.host   proxy.local\n"
	                   "broker.port.base=20000\n"
	                   "broker.port.map=1=20101,\\\n"
	                   "                2=20102\r\n"
	                   "mode=regional\n"
	                   "region=eu\n"
	                   "regional.nodes=2@kstretch-2.eu:9092, 1@[fd00::1]:9092\n"
	                   "node.id=2\n"
	                   "rack=eu-west-1a\n"
	                   "region.map=eu-*=eu,us-*=us\n"
	                   "workers=4\n"
	                   "admin.listen=127.0.0.1:9700\n"
	                   "max.frame.bytes=1048576\n"
	                   "max.inflight.requests=64\n"
	                   "log.level=debug   \n"
	                   "rack.cidr=10.1.0.0/16=eu-west-1a, fd00:1::/32 = eu-west-1b,127.0.0.1/32=us-east-1a\n"
	                   "listener.rack.9092=eu-west-1a\n"
	                   "listener.rack.20101=eu-west-1c\n"
	                   "fetch.rack.inject=false\n"
	                   "fetch.prefer.local=TRUE\n"
	                   "fetch.prefer.local.backoff.ms=5000\n";
	cr_assert(load(text), "%s", err.msg);
	cr_assert(kx_config_validate(&cfg, &err), "%s", err.msg);
	cr_assert_eq(cfg.bootstrap_cnt, 3);
	cr_assert_str_eq(cfg.bootstrap[0].host, "kafka-1.eu");
	cr_assert_eq(cfg.bootstrap[0].port, 9092);
	cr_assert_str_eq(cfg.bootstrap[1].host, "kafka-2.us");
	cr_assert_str_eq(cfg.bootstrap[2].host, "::1");
	cr_assert_eq(cfg.bootstrap[2].port, 9093);
	cr_assert_str_eq(cfg.listen.host, "0.0.0.0");
	cr_assert_str_eq(cfg.advertised_host, "proxy.local");
	cr_assert_eq(cfg.broker_port_base, 20000);
	cr_assert_eq(cfg.port_map_cnt, 2);
	cr_assert_eq(cfg.port_map[1].node_id, 2);
	cr_assert_eq(cfg.port_map[1].port, 20102);
	cr_assert_eq(cfg.mode, KX_MODE_REGIONAL);
	cr_assert_str_eq(cfg.region, "eu");
	cr_assert_eq(cfg.regional_nodes.cnt, 2);
	cr_assert_eq(cfg.regional_nodes.ids[0], 1, "sorted by id");
	cr_assert_str_eq(cfg.regional_nodes.nodes[0].host, "fd00::1");
	cr_assert_str_eq(cfg.regional_nodes.nodes[1].host, "kstretch-2.eu");
	cr_assert_eq(cfg.node_id, 2);
	cr_assert_str_eq(cfg.rack, "eu-west-1a");
	cr_assert_eq(cfg.region_rule_cnt, 2);
	cr_assert_str_eq(cfg.region_rules[1].pattern, "us-*");
	cr_assert_str_eq(cfg.region_rules[1].region, "us");
	cr_assert_eq(cfg.workers, 4);
	cr_assert_eq(cfg.admin_listen.port, 9700);
	cr_assert_eq(cfg.max_frame_bytes, 1048576);
	cr_assert_eq(cfg.max_inflight_requests, 64);
	cr_assert_eq(cfg.log_level, KX_LOG_DEBUG);
	cr_assert_eq(cfg.rack_cidr_cnt, 3);
	cr_assert_eq(cfg.rack_cidrs[0].family, AF_INET);
	cr_assert_eq(cfg.rack_cidrs[0].prefix, 16);
	cr_assert_str_eq(cfg.rack_cidrs[0].rack, "eu-west-1a");
	cr_assert_eq(cfg.rack_cidrs[1].family, AF_INET6);
	cr_assert_str_eq(cfg.rack_cidrs[1].rack, "eu-west-1b");
	cr_assert_eq(cfg.listener_rack_cnt, 2);
	cr_assert_eq(cfg.listener_racks[1].port, 20101);
	cr_assert_str_eq(cfg.listener_racks[1].rack, "eu-west-1c");
	cr_assert_not(cfg.fetch_rack_inject);
	cr_assert(cfg.fetch_prefer_local);
	cr_assert_eq(cfg.fetch_prefer_local_backoff_ms, 5000);
}

Test(config, properties_escapes_and_line_endings)
{
	cr_assert(load("r\\u0061ck = eu\\-a\r\rworkers=\\\n  7\n\n\nbootstrap.servers=h:1"), "%s", err.msg);
	cr_assert_str_eq(cfg.rack, "eu-a");
	cr_assert_eq(cfg.workers, 7);
	cr_assert_eq(cfg.bootstrap_cnt, 1);
}

Test(config, a_later_line_wins_within_a_file)
{
	cr_assert(load("workers=2\nworkers=3\n"), "%s", err.msg);
	cr_assert_eq(cfg.workers, 3);
}

static char *print_config(const struct kx_config *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	kx_config_print(c, out);
	fclose(out);
	return buf;
}

Test(config, printed_configuration_reads_back_the_same)
{
	static struct kx_config again;
	cr_assert(load("bootstrap.servers=a:1,[fe80::1]:2\nbroker.port.map=3=3003\nregion.map=x*=y\nrack=r1\n"
	               "rack.cidr=10.0.0.0/8=r2,fd00::/8=r3\nlistener.rack.9092=r4\nlistener.rack.19001=r5\n"
	               "fetch.prefer.local=false\nfetch.prefer.local.backoff.ms=0\n"));
	char *first = print_config(&cfg);
	kx_config_defaults(&again);
	cr_assert(kx_config_load_buffer(&again, "printed", first, strlen(first), &err), "%s\n%s", err.msg, first);
	char *second = print_config(&again);
	cr_assert_str_eq(first, second);
	cr_assert(strstr(first, "bootstrap.servers=a:1,[fe80::1]:2\n"), "%s", first);
	cr_assert(strstr(first, "rack.cidr=10.0.0.0/8=r2,fd00::/8=r3\n"), "%s", first);
	cr_assert(strstr(first, "listener.rack.9092=r4\nlistener.rack.19001=r5\n"), "%s", first);
	cr_assert(strstr(first, "fetch.rack.inject=true\nfetch.cut.through=true\nfetch.prefer.local=false\n"
	                        "fetch.prefer.local.backoff.ms=0\n"),
	          "%s", first);
	free(first);
	free(second);
}

Test(config, a_flag_wins_over_the_file_whatever_the_order)
{
	enum kx_config_action action;
	const char *text = "bootstrap.servers=file:9092\nworkers=2\nrack=eu-a\n";
	const char *path = write_temp(text, strlen(text));
	cr_assert(args(&action, "--workers", "5", "--config", path, "--rack=us-b", (char *)NULL), "%s", err.msg);
	cr_assert_eq(action, KX_CONFIG_RUN);
	cr_assert_eq(cfg.workers, 5);
	cr_assert_str_eq(cfg.rack, "us-b");
	cr_assert_str_eq(cfg.bootstrap[0].host, "file"); /* from the file, no flag */
	unlink(path);
}

Test(config, flags_alone_are_enough)
{
	enum kx_config_action action;
	cr_assert(args(&action, "--bootstrap-servers", "127.0.0.1:9092", "--listen", "127.0.0.1:9192",
	               "--broker-port-base=21000", "--check-config", (char *)NULL),
	          "%s", err.msg);
	cr_assert_eq(action, KX_CONFIG_CHECK);
	cr_assert_eq(cfg.listen.port, 9192);
	cr_assert_eq(cfg.broker_port_base, 21000);
}

Test(config, help_and_version_need_no_valid_configuration)
{
	enum kx_config_action action;
	cr_assert(args(&action, "--no-such-key", "--help", (char *)NULL));
	cr_assert_eq(action, KX_CONFIG_HELP);
	cr_assert(args(&action, "-V", (char *)NULL));
	cr_assert_eq(action, KX_CONFIG_VERSION);
}

Test(config, an_unknown_key_in_a_file_is_named_with_its_line)
{
	cr_assert_not(load("workers=1\n\nbootstrap.server=a:1\n"));
	cr_assert_str_eq(err.msg, "test.properties:3: unknown key 'bootstrap.server'");
}

Test(config, an_unknown_flag_is_named)
{
	enum kx_config_action action;
	cr_assert_not(args(&action, "--bootstrap-servers", "a:1", "--bootstrap-server=a:1", (char *)NULL));
	cr_assert_str_eq(err.msg, "--bootstrap-server: unknown option (see --help)");
	cr_assert_not(args(&action, "stray", (char *)NULL));
	cr_assert(strstr(err.msg, "'stray': unexpected argument"), "%s", err.msg);
	cr_assert_not(args(&action, "--bootstrap-servers", (char *)NULL));
	cr_assert_str_eq(err.msg, "--bootstrap-servers: needs a value");
}

Test(config, a_missing_config_file_is_named)
{
	enum kx_config_action action;
	cr_assert_not(args(&action, "--config", "/nonexistent/kstretch.properties", (char *)NULL));
	cr_assert(strstr(err.msg, "/nonexistent/kstretch.properties: cannot open"), "%s", err.msg);
}

Test(config, a_bad_value_from_a_flag_names_the_flag)
{
	enum kx_config_action action;
	cr_assert_not(args(&action, "--bootstrap-servers", "a:1", "--workers", "many", (char *)NULL));
	cr_assert_str_eq(err.msg, "--workers: 'many' is not an integer in 0..256");
}

/* Arrays, not pointers: Criterion copies parameters into a new process. */
struct bad_value {
	char line[64];
	char expect[80]; /* substring of the error */
};

static struct bad_value bad_values[] = {
    {"rack.cidr=10.0.0.0/8", "rack.cidr: '10.0.0.0/8' is not CIDR=RACK"},
    {"rack.cidr=10.0.0.0/33=eu-a", "rack.cidr: '10.0.0.0/33' is not an IPv4 or IPv6 network"},
    {"rack.cidr=10.0.0/8=eu-a", "rack.cidr: '10.0.0/8' is not an IPv4 or IPv6 network"},
    {"rack.cidr=fd00::/129=eu-a", "rack.cidr: 'fd00::/129' is not an IPv4"},
    {"rack.cidr=10.0.0.0/8=", "rack.cidr: rack '' must be"},
    {"rack.cidr=10.0.0.0/8=e u", "rack.cidr: rack 'e u' must be"},
    {"rack.cidr=10.0.0.0/8=a,,", "rack.cidr: empty item"},
    {"listener.rack.0=eu-a", "listener.rack.0: port '0' is not a number in 1..65535"},
    {"listener.rack.65536=eu-a", "listener.rack.65536: port '65536'"},
    {"listener.rack.x9=eu-a", "listener.rack.x9: port 'x9'"},
    {"listener.rack.9092=e/u", "listener.rack.9092: 'e/u' is not a rack name"},
    {"listener.rack.=eu-a", "unknown key 'listener.rack.'"},
    {"fetch.rack.inject=yes", "fetch.rack.inject: 'yes' is not true or false"},
    {"fetch.prefer.local=1", "fetch.prefer.local: '1' is not true or false"},
    {"fetch.cut.through=yes", "fetch.cut.through: 'yes' is not true or false"},
    {"fetch.prefer.local.backoff.ms=-1", "fetch.prefer.local.backoff.ms: '-1' is not an integer in 0..3600000"},
    {"fetch.prefer.local.backoff.ms=3600001", "fetch.prefer.local.backoff.ms: '3600001'"},
    {"bootstrap.servers=", "bootstrap.servers: empty item"},
    {"bootstrap.servers=a:1,,b:2", "bootstrap.servers: empty item"},
    {"bootstrap.servers=nohost", "bootstrap.servers: 'nohost' is not HOST:PORT"},
    {"bootstrap.servers=a:0", "bootstrap.servers: port '0' is not a number in 1..65535"},
    {"bootstrap.servers=a:65536", "bootstrap.servers: port '65536'"},
    {"bootstrap.servers=a:12x", "bootstrap.servers: port '12x'"},
    {"bootstrap.servers=a b:1", "bootstrap.servers: 'a b' is not a valid host"},
    {"bootstrap.servers=[::1:9092", "bootstrap.servers: '[::1:9092' is not [IPV6]:PORT"},
    {"bootstrap.servers=[zz::1]:9092", "bootstrap.servers: 'zz::1' is not a valid host"},
    {"listen=127.0.0.1", "listen: '127.0.0.1' is not HOST:PORT"},
    {"listen=:9092", "listen: '' is not a valid host"},
    {"advertised.host=bad/host", "advertised.host: 'bad/host' is not a valid host"},
    {"broker.port.base=0", "broker.port.base: '0' is not an integer in 1..65535"},
    {"broker.port.base=-5", "broker.port.base: '-5'"},
    {"broker.port.base=+5", "broker.port.base: '+5'"},
    {"broker.port.base=99999999999999999999", "broker.port.base: '99999999999999999999'"},
    {"broker.port.map=1", "broker.port.map: '1' is not NODE_ID=PORT"},
    {"broker.port.map=-1=100", "broker.port.map: node id '-1'"},
    {"broker.port.map=1=70000", "broker.port.map: port '70000'"},
    {"broker.port.map=1=100,1=101", "broker.port.map: node 1 is mapped twice"},
    {"broker.port.map=1=100,2=100", "broker.port.map: port 100 is mapped to nodes 1 and 2"},
    {"mode=sidecar", "mode: 'sidecar' is not one of: mapped, regional"},
    {"rack=eu a", "rack: 'eu a' is not a name"},
    {"region.map=eu-*", "region.map: 'eu-*' is not RACK_PATTERN=REGION"},
    {"region.map==eu", "region.map: rack pattern ''"},
    {"region.map=eu-*=e*u", "region.map: region 'e*u'"},
    {"workers=257", "workers: '257' is not an integer in 0..256"},
    {"workers=", "workers: '' is not an integer"},
    {"max.frame.bytes=1", "max.frame.bytes: '1' is not an integer in 64..1073741824"},
    {"max.inflight.requests=0", "max.inflight.requests: '0'"},
    {"max.held.request.bytes=63", "max.held.request.bytes: '63' is not an integer in 64..1073741824"},
    {"write.timeout.ms=0", "write.timeout.ms: '0' is not an integer in 1..86400000"},
    {"log.level=trace", "log.level: 'trace' is not one of: error, warn, info, debug"},
    {"tls.protocols=TLSv1.1", "tls.protocols: 'TLSv1.1' is not TLSv1.2 or TLSv1.3"},
    {"tls.protocols=", "tls.protocols: no protocol"},
    {"tls.ciphers=AES;rm", "tls.ciphers: ';' at 3 is not in an OpenSSL cipher list"},
    {"tls.client.auth=always", "tls.client.auth: 'always' is not one of: none, requested, required"},
    {"tls.client.rack.from=o", "tls.client.rack.from: 'o' is not one of: none, cn, ou, san"},
    {"tls.client.rack.prefix=a b", "tls.client.rack.prefix: 'a b' has a space"},
    {"tls.handshake.timeout.ms=0", "tls.handshake.timeout.ms: '0' is not an integer"},
    {"upstream.tls=1", "upstream.tls: '1' is not true or false"},
    {"listener.mode=port", "listener.mode: 'port' is not one of: ports, sni"},
    {"sni.host.pattern=broker.kafka", "sni.host.pattern: $(nodeId) must appear exactly once"},
    {"sni.host.pattern=b-$(nodeId)-$(zone)", "sni.host.pattern: unknown placeholder at '$(zone)'"},
    {"sni.host.pattern=b_$(nodeId)", "sni.host.pattern: '_' is not a DNS name character"},
    {"key\\u12", "malformed \\uXXXX escape"},
    {"rack=\\u0000", "\\u0000 is not allowed"},
};

ParameterizedTestParameters(config, a_bad_value_names_the_key_and_the_line)
{
	return cr_make_param_array(struct bad_value, bad_values, sizeof(bad_values) / sizeof(bad_values[0]));
}

ParameterizedTest(struct bad_value *bv, config, a_bad_value_names_the_key_and_the_line)
{
	char text[256];
	snprintf(text, sizeof(text), "# header\n%s\n", bv->line);
	cr_assert_not(load(text), "accepted: %s", bv->line);
	cr_assert(strncmp(err.msg, "test.properties:2: ", 19) == 0, "%s", err.msg);
	cr_assert(strstr(err.msg, bv->expect), "for '%s' got: %s", bv->line, err.msg);
}

Test(config, cross_key_checks)
{
	cr_assert(load("bootstrap.servers=a:1\nlisten=0.0.0.0:9092\n"));
	cr_assert_not(kx_config_validate(&cfg, &err));
	cr_assert(strstr(err.msg, "advertised.host: required when listen is a wildcard"), "%s", err.msg);

	cr_assert(load("bootstrap.servers=a:1\nadmin.listen=127.0.0.1:9092\n"));
	cr_assert_not(kx_config_validate(&cfg, &err));
	cr_assert(strstr(err.msg, "admin.listen: same address as listen"), "%s", err.msg);

	cr_assert(load("bootstrap.servers=a:1\nbroker.port.map=4=9092\n"));
	cr_assert_not(kx_config_validate(&cfg, &err));
	cr_assert(strstr(err.msg, "broker.port.map: port 9092 of node 4 is taken by listen"), "%s", err.msg);
}

Test(config, rack_keys_from_flags_name_the_flag)
{
	enum kx_config_action action;
	cr_assert(args(&action, "--bootstrap-servers", "a:1", "--listener-rack-9092", "eu-a", "--rack-cidr",
	               "127.0.0.0/8=us-a", "--fetch-prefer-local", "false", (char *)NULL),
	          "%s", err.msg);
	cr_assert_eq(cfg.listener_rack_cnt, 1);
	cr_assert_eq(cfg.listener_racks[0].port, 9092);
	cr_assert_str_eq(cfg.rack_cidrs[0].rack, "us-a");
	cr_assert_not(cfg.fetch_prefer_local);
	cr_assert_not(args(&action, "--bootstrap-servers", "a:1", "--listener-rack-99999=eu-a", (char *)NULL));
	cr_assert_str_eq(err.msg, "--listener-rack-99999: port '99999' is not a number in 1..65535");
	cr_assert_not(args(&action, "--bootstrap-servers", "a:1", "--fetch-rack-inject=maybe", (char *)NULL));
	cr_assert_str_eq(err.msg, "--fetch-rack-inject: 'maybe' is not true or false");
}

Test(config, a_listener_rack_set_again_wins_and_empty_removes_it)
{
	cr_assert(load("listener.rack.9092=eu-a\nlistener.rack.19001=eu-b\nlistener.rack.9092=us-a\n"), "%s", err.msg);
	cr_assert_eq(cfg.listener_rack_cnt, 2);
	cr_assert_str_eq(cfg.listener_racks[0].rack, "us-a");
	cr_assert(load("listener.rack.9092=eu-a\nlistener.rack.19001=eu-b\nlistener.rack.9092=\n"), "%s", err.msg);
	cr_assert_eq(cfg.listener_rack_cnt, 1);
	cr_assert_eq(cfg.listener_racks[0].port, 19001);
}

Test(config, a_listener_rack_must_name_a_kstretch_listener)
{
	cr_assert(load("bootstrap.servers=a:1\nlistener.rack.9092=eu-a\nlistener.rack.19005=eu-b\n"
	               "broker.port.map=1=8001\nlistener.rack.8001=eu-c\n"));
	cr_assert(kx_config_validate(&cfg, &err), "%s", err.msg);

	cr_assert(load("bootstrap.servers=a:1\nlistener.rack.80=eu-a\n"));
	cr_assert_not(kx_config_validate(&cfg, &err));
	cr_assert(strstr(err.msg, "listener.rack.80: port 80 is not a kstretch listener"), "%s", err.msg);

	cr_assert(load("bootstrap.servers=a:1\nadmin.listen=127.0.0.1:19644\nlistener.rack.19644=eu-a\n"));
	cr_assert_not(kx_config_validate(&cfg, &err));
	cr_assert(strstr(err.msg, "listener.rack.19644: port 19644 is admin.listen"), "%s", err.msg);
}

Test(config, placement_rules_come_from_the_configuration)
{
	cr_assert(load("rack=us-a\nregion.map=us-*=america\nrack.cidr=10.0.0.0/8=eu-a\nlistener.rack.9092=ap-a\n"));
	struct kr_placement p;
	kx_config_placement(&cfg, &p);
	cr_assert_str_eq(p.rack, "us-a");
	cr_assert_eq(p.listener_cnt, 1);
	cr_assert_eq(p.cidr_cnt, 1);
	cr_assert_eq(p.region_cnt, 1);
	struct kr_client_place place;
	kr_client_place(&p, 19001, NULL, 0, NULL, NULL, &place);
	cr_assert_str_eq(place.rack, "us-a");
	cr_assert_str_eq(place.region, "america");
	cr_assert_eq(place.source, KR_RACK_PROXY);
}

Test(config, print_topology_is_an_action)
{
	enum kx_config_action action;
	cr_assert(args(&action, "--print-topology", "--bootstrap-servers", "a:1", (char *)NULL), "%s", err.msg);
	cr_assert_eq(action, KX_CONFIG_PRINT_TOPOLOGY);
	cr_assert_not(args(&action, "--print-topology", (char *)NULL), "it needs a cluster to ask");
	cr_assert(strstr(err.msg, "bootstrap.servers: required"), "%s", err.msg);
}

Test(config, help_lists_the_rack_keys)
{
	static const char *const flags[] = {"--rack-cidr", "--listener-rack-PORT", "--fetch-rack-inject",
	                                    "--fetch-prefer-local ", "--fetch-prefer-local-backoff-ms"};
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	kx_config_print_help(out);
	fclose(out);
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		cr_assert(strstr(buf, flags[i]), "%s missing from --help", flags[i]);
	free(buf);
}

Test(config, files_that_are_not_text_or_too_large_are_refused)
{
	static char big[KX_CONFIG_FILE_MAX + 2];
	kx_config_defaults(&cfg);
	cr_assert_not(kx_config_load_buffer(&cfg, "bin", "workers=1\0x", 11, &err));
	cr_assert(strstr(err.msg, "bin: contains a NUL byte"), "%s", err.msg);
	memset(big, '#', sizeof(big));
	cr_assert_not(kx_config_load_buffer(&cfg, "big", big, sizeof(big), &err));
	cr_assert(strstr(err.msg, "big: larger than"), "%s", err.msg);
}

Test(config, a_trailing_backslash_at_the_end_of_the_file_is_an_error)
{
	cr_assert_not(load("rack=eu\\"));
	cr_assert(strstr(err.msg, "test.properties:1: backslash at the end"), "%s", err.msg);
}

Test(config, an_error_stays_on_one_line_whatever_the_value_holds)
{
	cr_assert_not(load("rack=eu\\nus\n"));
	cr_assert_str_eq(err.msg,
	                 "test.properties:1: rack: 'eu?us' is not a name of 1..63 characters from [A-Za-z0-9._-]");
}

Test(config, upstream_sasl_keys)
{
	cr_assert(load("bootstrap.servers=a:1\n"));
	cr_assert_eq(cfg.upstream_sasl_mechanism, KX_SASL_NONE);
	cr_assert(kx_config_validate(&cfg, &err), "%s", err.msg);
	static const char *mechs[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};
	for (int i = 0; i < 3; i++) {
		char text[256];
		snprintf(text, sizeof(text),
		         "bootstrap.servers=a:1\nupstream.sasl.mechanism=%s\nupstream.sasl.username=kst=x,y\n"
		         "upstream.sasl.password=s3cr\\u00e9t\n",
		         mechs[i]);
		cr_assert(load(text), "%s", err.msg);
		cr_assert(kx_config_validate(&cfg, &err), "%s", err.msg);
		cr_assert_eq(cfg.upstream_sasl_mechanism, (enum kx_sasl_mechanism)(KX_SASL_PLAIN + i));
		cr_assert_str_eq(cfg.upstream_sasl_username, "kst=x,y");
		cr_assert_str_eq(kx_config_upstream_sasl_password(&cfg), "s3cr\xc3\xa9t");
	}
	cr_assert_not(load("upstream.sasl.mechanism=scram-sha-256\n"));
	cr_assert(strstr(err.msg, "upstream.sasl.mechanism: 'scram-sha-256' is not one of: none, PLAIN, SCRAM-SHA-256, "
	                          "SCRAM-SHA-512"),
	          "%s", err.msg);
	cr_assert_not(load("upstream.sasl.username=a\\tb\n"));
	cr_assert(strstr(err.msg, "upstream.sasl.username: not a user name"), "%s", err.msg);
}

Test(config, upstream_sasl_needs_a_user_and_a_password)
{
	cr_assert(load("bootstrap.servers=a:1\nupstream.sasl.mechanism=PLAIN\nupstream.sasl.password=p\n"));
	cr_assert_not(kx_config_validate(&cfg, &err));
	cr_assert_str_eq(err.msg, "upstream.sasl.username: required with upstream.sasl.mechanism=PLAIN");
	cr_assert(load("bootstrap.servers=a:1\nupstream.sasl.mechanism=SCRAM-SHA-512\nupstream.sasl.username=u\n"));
	cr_assert_not(kx_config_validate(&cfg, &err));
	cr_assert_str_eq(err.msg, "upstream.sasl.password: required with upstream.sasl.mechanism=SCRAM-SHA-512 (or "
	                          "upstream.sasl.password.file)");
	cr_assert(load("bootstrap.servers=a:1\nupstream.sasl.username=u\n"));
	cr_assert_not(kx_config_validate(&cfg, &err));
	cr_assert(strstr(err.msg, "upstream.sasl.username: set, but upstream.sasl.mechanism=none"), "%s", err.msg);
}

Test(config, the_upstream_sasl_password_is_never_printed)
{
	cr_assert(load("bootstrap.servers=a:1\nupstream.sasl.mechanism=SCRAM-SHA-256\nupstream.sasl.username=u\n"
	               "upstream.sasl.password=hunter2\n"));
	char *printed = print_config(&cfg);
	cr_assert_null(strstr(printed, "hunter2"), "%s", printed);
	cr_assert(strstr(printed, "upstream.sasl.password=********\n"), "%s", printed);
	cr_assert(strstr(printed, "upstream.sasl.mechanism=SCRAM-SHA-256\nupstream.sasl.username=u\n"), "%s", printed);
	free(printed);
	cr_assert(load("bootstrap.servers=a:1\n"));
	printed = print_config(&cfg);
	cr_assert(strstr(printed, "upstream.sasl.password=\n"), "unset: empty, %s", printed);
	free(printed);
	/* A bad value is not quoted back either. */
	char text[KX_SASL_PASSWORD_MAX + 64] = "upstream.sasl.password=";
	memset(text + strlen(text), 'x', KX_SASL_PASSWORD_MAX + 1);
	cr_assert_not(load(text));
	cr_assert(strstr(err.msg, "a password of 1025 bytes: at most 1024"), "%s", err.msg);
	cr_assert_null(strstr(err.msg, "xxx"), "%s", err.msg);
}

Test(config, the_upstream_sasl_password_can_come_from_a_file)
{
	enum kx_config_action action;
	const char *path = write_temp("from file\n", 10);
	char flag[128];
	snprintf(flag, sizeof(flag), "--upstream-sasl-password-file=%s", path);
	cr_assert(args(&action, "--bootstrap-servers=a:1", "--upstream-sasl-mechanism=PLAIN", "--upstream-sasl-username=u",
	               flag, (char *)NULL),
	          "%s", err.msg);
	cr_assert_str_eq(kx_config_upstream_sasl_password(&cfg), "from file", "one trailing newline dropped");
	char *printed = print_config(&cfg);
	cr_assert_null(strstr(printed, "from file"), "%s", printed);
	cr_assert(strstr(printed, "upstream.sasl.password=\n"), "%s", printed);
	free(printed);
	cr_assert_not(args(&action, "--bootstrap-servers=a:1", "--upstream-sasl-mechanism=PLAIN",
	                   "--upstream-sasl-username=u", "--upstream-sasl-password=p", flag, (char *)NULL));
	cr_assert_str_eq(err.msg, "upstream.sasl.password.file: set together with upstream.sasl.password (set only one)");
	unlink(path);

	path = write_temp("crlf\r\n", 6);
	snprintf(flag, sizeof(flag), "upstream.sasl.password.file=%s\n", path);
	cr_assert(load(flag), "%s", err.msg);
	cr_assert_str_eq(cfg.upstream_sasl_file_password, "crlf");
	unlink(path);
	path = write_temp("two\n\n", 5);
	snprintf(flag, sizeof(flag), "upstream.sasl.password.file=%s\n", path);
	cr_assert_not(load(flag));
	cr_assert(strstr(err.msg, "more than one line"), "%s", err.msg);
	unlink(path);
	path = write_temp("\n", 1);
	snprintf(flag, sizeof(flag), "upstream.sasl.password.file=%s\n", path);
	cr_assert_not(load(flag));
	cr_assert(strstr(err.msg, "is empty"), "%s", err.msg);
	unlink(path);
	char fifo[64];
	snprintf(fifo, sizeof(fifo), "/tmp/kstretch-test-fifo-%d", (int)getpid());
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	snprintf(flag, sizeof(flag), "upstream.sasl.password.file=%s\n", fifo);
	cr_assert_not(load(flag), "a FIFO never holds start-up up");
	cr_assert(strstr(err.msg, "is not a regular file"), "%s", err.msg);
	unlink(fifo);
	cr_assert_not(load("upstream.sasl.password.file=/nonexistent/kstretch-password\n"));
	cr_assert(strstr(err.msg, "test.properties:1: upstream.sasl.password.file: cannot open "
	                          "'/nonexistent/kstretch-password': No such file or directory"),
	          "%s", err.msg);
}

/* Cross-key rules of TLS, mTLS and SNI: each names what is missing. */
struct tls_rule {
	char text[200];
	char expect[100];
};

static struct tls_rule tls_rules[] = {
    {"tls.cert=/c.pem", "tls.key: required with tls.cert"},
    {"tls.key=/k.pem", "tls.cert: required with tls.key"},
    {"tls.client.auth=required\ntls.client.ca=/ca.pem", "tls.client.auth=required: needs TLS towards clients"},
    {"tls.cert=/c\ntls.key=/k\ntls.client.auth=requested", "tls.client.ca: required with tls.client.auth=requested"},
    {"tls.cert=/c\ntls.key=/k\ntls.client.ca=/ca", "tls.client.ca: set, but tls.client.auth=none"},
    {"tls.cert=/c\ntls.key=/k\ntls.client.rack.from=ou", "tls.client.rack.from: needs client certificates"},
    {"upstream.tls.ca=/ca", "upstream.tls.ca: set, but upstream.tls=false"},
    {"upstream.tls=true\nupstream.tls.cert=/c", "upstream.tls.key: required with upstream.tls.cert"},
    {"listener.mode=sni\nsni.host.pattern=b-$(nodeId).k", "listener.mode=sni: needs TLS towards clients"},
    {"listener.mode=sni\ntls.cert=/c\ntls.key=/k", "sni.host.pattern: required with listener.mode=sni"},
};

ParameterizedTestParameters(config, tls_keys_go_together)
{
	return cr_make_param_array(struct tls_rule, tls_rules, sizeof(tls_rules) / sizeof(tls_rules[0]));
}

ParameterizedTest(struct tls_rule *r, config, tls_keys_go_together)
{
	char text[300];
	snprintf(text, sizeof(text), "bootstrap.servers=k:9092\n%s\n", r->text);
	cr_assert(load(text), "%s", err.msg);
	cr_assert_not(kx_config_validate(&cfg, &err), "accepted: %s", r->text);
	cr_assert(strstr(err.msg, r->expect), "for '%s' got: %s", r->text, err.msg);
}

Test(config, a_complete_tls_setup_is_valid)
{
	cr_assert(load("bootstrap.servers=k:9093\ntls.cert=/c.pem\ntls.key=/k.pem\ntls.client.ca=/ca.pem\n"
	               "tls.client.auth=required\ntls.client.rack.from=ou\ntls.client.rack.prefix=rack-\n"
	               "tls.protocols=TLSv1.3\ntls.ciphers=TLS_AES_128_GCM_SHA256:ECDHE-RSA-AES128-GCM-SHA256\n"
	               "upstream.tls=true\nupstream.tls.ca=/bca.pem\nlistener.mode=sni\n"
	               "sni.host.pattern=b-$(nodeId)-$(region).kafka.example\n"),
	          "%s", err.msg);
	cr_assert(kx_config_validate(&cfg, &err), "%s", err.msg);
	cr_assert_eq(cfg.tls_protocols, KX_TLS_V13);
	cr_assert_eq(cfg.tls_client_auth, KX_TLS_AUTH_REQUIRED);
	cr_assert_eq(cfg.tls_client_rack_from, KX_CERT_ATTR_OU);
	cr_assert_eq(cfg.listener_mode, KX_LISTENER_SNI);
	cr_assert(cfg.upstream_tls && cfg.upstream_tls_verify_hostname);
}

/* ---- mode=regional: region, node.id and the region's node set ----------- */

/* A regional key's value, or a combination of keys, and the one line it gets. */
struct regional_rule {
	char text[160];
	char expect[240]; /* the whole error message */
};

static struct regional_rule regional_bad_values[] = {
    {"region=e u", "test.properties:2: region: 'e u' is not a name of 1..63 characters from [A-Za-z0-9._-]"},
    {"regional.nodes=1@a", "test.properties:2: regional.nodes: '1@a' is not [ID@]HOST:PORT (an IPv6 address in "
                           "brackets)"},
    {"regional.nodes=x@a:1", "test.properties:2: regional.nodes: 'x@a:1': node id 'x' is not an integer in "
                             "0..2147483647"},
    {"regional.nodes=1@a:0", "test.properties:2: regional.nodes: '1@a:0': port '0' is not a number in 1..65535"},
    {"regional.nodes=1@a:1,,2@b:1", "test.properties:2: regional.nodes: an empty item in the node list"},
    {"regional.nodes=1@a b:1", "test.properties:2: regional.nodes: 'a b' is not a host name or address of "
                               "1..255 characters"},
    {"regional.nodes=1@a:1,1@b:2", "test.properties:2: regional.nodes: node id 1 is given to both a:1 and b:2"},
    {"regional.nodes=1@a:1,2@A:1", "test.properties:2: regional.nodes: A:1 is listed twice (nodes 1 and 2)"},
    {"regional.nodes.dns=kstretch", "test.properties:2: regional.nodes.dns: 'kstretch' is not HOST:PORT"},
    {"regional.nodes.dns=k.eu.svc:0", "test.properties:2: regional.nodes.dns: port '0' is not a number in "
                                      "1..65535"},
    {"regional.nodes.dns=10.0.0.1:9092", "test.properties:2: regional.nodes.dns: '10.0.0.1' is an address, not a "
                                         "DNS name (list fixed nodes in regional.nodes)"},
    {"regional.nodes.dns=[fd00::1]:9092", "test.properties:2: regional.nodes.dns: 'fd00::1' is an address, not a "
                                          "DNS name (list fixed nodes in regional.nodes)"},
    {"regional.nodes.refresh.ms=999", "test.properties:2: regional.nodes.refresh.ms: '999' is not an integer in "
                                      "1000..3600000"},
    {"regional.nodes.refresh.ms=3600001", "test.properties:2: regional.nodes.refresh.ms: '3600001' is not an "
                                          "integer in 1000..3600000"},
    {"node.id=-1", "test.properties:2: node.id: '-1' is not an integer in 0..2147483647"},
    {"node.id=2147483648", "test.properties:2: node.id: '2147483648' is not an integer in 0..2147483647"},
};

ParameterizedTestParameters(config, a_bad_regional_value_names_the_key_and_the_value)
{
	return cr_make_param_array(struct regional_rule, regional_bad_values,
	                           sizeof(regional_bad_values) / sizeof(regional_bad_values[0]));
}

ParameterizedTest(struct regional_rule *r, config, a_bad_regional_value_names_the_key_and_the_value)
{
	char text[256];
	snprintf(text, sizeof(text), "# header\n%s\n", r->text);
	cr_assert_not(load(text), "accepted: %s", r->text);
	cr_assert_str_eq(err.msg, r->expect);
}

static struct regional_rule regional_rules[] = {
    /* mode=regional needs a region and exactly one source of nodes */
    {"mode=regional\nregional.nodes=1@a:9092",
     "region: required with mode=regional (the region this kstretch tier serves, e.g. region=eu)"},
    {"mode=regional\nregion=eu",
     "regional.nodes: required with mode=regional (ID@HOST:PORT,... of the region's kstretch nodes, or "
     "regional.nodes.dns=NAME:PORT to read them from DNS)"},
    {"mode=regional\nregion=eu\nregional.nodes=1@a:9092\nregional.nodes.dns=kstretch.eu.svc:9092",
     "regional.nodes.dns: set together with regional.nodes (set only one: the list of nodes, or the DNS name to "
     "read them from)"},
    {"mode=regional\nregion=eu\nregional.nodes=1@a:9092,2@b:9092\nnode.id=3",
     "node.id: 3 is not one of regional.nodes (ids 1,2)"},
    {"mode=regional\nregion=eu\nregional.nodes=1@a:9092\nregional.nodes.refresh.ms=5000",
     "regional.nodes.refresh.ms: set to 5000, but the nodes are regional.nodes, which is never read again (the "
     "key is for regional.nodes.dns)"},
    /* mode=mapped refuses every one of them */
    {"region=eu", "region: set, but mode=mapped (a key of mode=regional: set mode=regional, or remove it)"},
    {"regional.nodes=1@a:9092",
     "regional.nodes: set, but mode=mapped (a key of mode=regional: set mode=regional, or remove it)"},
    {"regional.nodes.dns=kstretch.eu.svc:9092",
     "regional.nodes.dns: set, but mode=mapped (a key of mode=regional: set mode=regional, or remove it)"},
    {"regional.nodes.refresh.ms=5000",
     "regional.nodes.refresh.ms: set, but mode=mapped (a key of mode=regional: set mode=regional, or remove it)"},
    {"node.id=1", "node.id: set, but mode=mapped (a key of mode=regional: set mode=regional, or remove it)"},
};

ParameterizedTestParameters(config, regional_keys_go_together)
{
	return cr_make_param_array(struct regional_rule, regional_rules,
	                           sizeof(regional_rules) / sizeof(regional_rules[0]));
}

ParameterizedTest(struct regional_rule *r, config, regional_keys_go_together)
{
	char text[300];
	snprintf(text, sizeof(text), "bootstrap.servers=k:9092\n%s\n", r->text);
	cr_assert(load(text), "%s", err.msg);
	cr_assert_not(kx_config_validate(&cfg, &err), "accepted: %s", r->text);
	cr_assert_str_eq(err.msg, r->expect);
}

Test(config, a_region_of_one_fixed_node_is_valid)
{
	cr_assert(load("bootstrap.servers=k:9092\nmode=regional\nregion=eu\nregional.nodes=5@kstretch.eu:9092\n"
	               "node.id=5\n"));
	cr_assert(kx_config_validate(&cfg, &err), "%s", err.msg);
	cr_assert_eq(cfg.regional_nodes.cnt, 1);
	cr_assert_eq(cfg.regional_nodes.ids[0], 5);
	cr_assert(cfg.regional_nodes.finished);
}

Test(config, fixed_nodes_without_ids_are_numbered_from_their_address)
{
	cr_assert(load("bootstrap.servers=k:9092\nmode=regional\nregion=eu\nregional.nodes=10.0.0.1:9092\n"));
	cr_assert(kx_config_validate(&cfg, &err), "%s", err.msg);
	cr_assert_eq(cfg.regional_nodes.ids[0], kr_regional_node_id("10.0.0.1", 9092));
}

Test(config, a_region_read_from_dns_is_valid_with_or_without_node_id)
{
	cr_assert(load("bootstrap.servers=k:9092\nmode=regional\nregion=eu\n"
	               "regional.nodes.dns=kstretch-headless.eu.svc.cluster.local:9092\nregional.nodes.refresh.ms=5000\n"));
	cr_assert(kx_config_validate(&cfg, &err), "%s", err.msg);
	cr_assert_str_eq(cfg.regional_nodes_dns.host, "kstretch-headless.eu.svc.cluster.local");
	cr_assert_eq(cfg.regional_nodes_dns.port, 9092);
	cr_assert_eq(cfg.regional_nodes_refresh_ms, 5000);
	cr_assert_eq(cfg.regional_nodes.cnt, 0);
	/* The ids of DNS nodes come from their addresses: node.id cannot be checked before they are read. */
	cr_assert(load("bootstrap.servers=k:9092\nmode=regional\nregion=eu\nregional.nodes.dns=k.eu.svc:9092\n"
	               "node.id=77\n"));
	cr_assert(kx_config_validate(&cfg, &err), "%s", err.msg);
}

Test(config, an_empty_regional_value_unsets_the_key)
{
	cr_assert(load("regional.nodes=1@a:1\nregional.nodes=\nregional.nodes.dns=k:1\nregional.nodes.dns=\n"
	               "node.id=3\nnode.id=\nregion=eu\nregion=\nbootstrap.servers=k:9092\n"));
	cr_assert(kx_config_validate(&cfg, &err), "%s", err.msg);
	cr_assert_eq(cfg.regional_nodes.cnt, 0);
	cr_assert_str_eq(cfg.regional_nodes_dns.host, "");
	cr_assert_eq(cfg.node_id, -1);
}

/* --check-config's output is a configuration: printed regional keys read back and validate. */
static void assert_print_round_trip(const char *text, const char *expect_line)
{
	static struct kx_config again;
	cr_assert(load(text), "%s", err.msg);
	cr_assert(kx_config_validate(&cfg, &err), "%s", err.msg);
	char *first = print_config(&cfg);
	kx_config_defaults(&again);
	cr_assert(kx_config_load_buffer(&again, "printed", first, strlen(first), &err), "%s\n%s", err.msg, first);
	cr_assert(kx_config_validate(&again, &err), "%s\n%s", err.msg, first);
	char *second = print_config(&again);
	cr_assert_str_eq(first, second);
	cr_assert(strstr(first, expect_line), "%s", first);
	free(first);
	free(second);
}

Test(config, printed_regional_keys_read_back_and_validate)
{
	assert_print_round_trip("bootstrap.servers=k:9092\n",
	                        "region=\nregional.nodes=\nregional.nodes.dns=\nregional.nodes.refresh.ms=30000\n"
	                        "node.id=\n");
	assert_print_round_trip("bootstrap.servers=k:9092\nmode=regional\nregion=eu\nnode.id=3\n"
	                        "regional.nodes=7@[fd00::7]:9092, 3@kstretch-3.eu:9093\n",
	                        "regional.nodes=3@kstretch-3.eu:9093,7@[fd00::7]:9092\n");
	assert_print_round_trip("bootstrap.servers=k:9092\nmode=regional\nregion=eu\n"
	                        "regional.nodes.dns=k.eu.svc:9092\nregional.nodes.refresh.ms=2000\n",
	                        "regional.nodes.dns=k.eu.svc:9092\nregional.nodes.refresh.ms=2000\n");
}

Test(config, regional_keys_are_flags_too)
{
	enum kx_config_action action;
	cr_assert(args(&action, "--bootstrap-servers", "k:9092", "--mode", "regional", "--region", "eu",
	               "--regional-nodes-dns", "kstretch.eu.svc:9092", "--regional-nodes-refresh-ms=5000",
	               "--node-id", "4", (char *)NULL),
	          "%s", err.msg);
	cr_assert_str_eq(cfg.region, "eu");
	cr_assert_str_eq(cfg.regional_nodes_dns.host, "kstretch.eu.svc");
	cr_assert_eq(cfg.regional_nodes_refresh_ms, 5000);
	cr_assert_eq(cfg.node_id, 4);
	cr_assert(args(&action, "--bootstrap-servers", "k:9092", "--mode=regional", "--region=eu",
	               "--regional-nodes", "1@a:9092,2@b:9092", "--node-id=2", (char *)NULL),
	          "%s", err.msg);
	cr_assert_eq(cfg.regional_nodes.cnt, 2);
	cr_assert_not(args(&action, "--bootstrap-servers", "k:9092", "--regional-nodes", "1@a", (char *)NULL));
	cr_assert_str_eq(err.msg, "--regional-nodes: '1@a' is not [ID@]HOST:PORT (an IPv6 address in brackets)");
	cr_assert_not(args(&action, "--bootstrap-servers", "k:9092", "--node-id", "x", (char *)NULL));
	cr_assert_str_eq(err.msg, "--node-id: 'x' is not an integer in 0..2147483647");
	cr_assert_not(args(&action, "--bootstrap-servers", "k:9092", "--mode", "regional", (char *)NULL));
	cr_assert_str_eq(err.msg, "region: required with mode=regional (the region this kstretch tier serves, e.g. "
	                          "region=eu)");
}

Test(config, regional_upstream_connections_is_checked_and_only_for_regional_mode)
{
	enum kx_config_action action;
	cr_assert(args(&action, "--bootstrap-servers", "k:9092", "--mode=regional", "--region=eu",
	               "--regional-nodes", "1@a:9092", "--regional-upstream-connections", "4", (char *)NULL),
	          "%s", err.msg);
	cr_assert_eq(cfg.regional_upstream_connections, 4);
	cr_assert(args(&action, "--bootstrap-servers", "k:9092", "--mode=regional", "--region=eu",
	               "--regional-nodes", "1@a:9092", (char *)NULL),
	          "%s", err.msg);
	cr_assert_eq(cfg.regional_upstream_connections, 2);
	cr_assert_not(args(&action, "--bootstrap-servers", "k:9092", "--mode=regional", "--region=eu",
	                   "--regional-nodes", "1@a:9092", "--regional-upstream-connections", "0", (char *)NULL));
	cr_assert_not(args(&action, "--bootstrap-servers", "k:9092", "--regional-upstream-connections", "3", (char *)NULL));
	cr_assert(strstr(err.msg, "regional.upstream.connections: set, but mode=mapped"), "%s", err.msg);
}

Test(config, help_lists_the_regional_keys)
{
	static const char *const flags[] = {"--region ", "--regional-nodes ", "--regional-nodes-dns ",
	                                    "--regional-nodes-refresh-ms", "--node-id "};
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	kx_config_print_help(out);
	fclose(out);
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		cr_assert(strstr(buf, flags[i]), "%s missing from --help", flags[i]);
	cr_assert(strstr(buf, "(regional.nodes.refresh.ms=30000 by default)"), "%s", buf);
	free(buf);
}

#define REGIONAL "bootstrap.servers=a:1\nmode=regional\nregion=eu\nregional.nodes=1@h:9092\nnode.id=1\n"

Test(config, regional_client_sasl_keys)
{
	cr_assert(load(REGIONAL));
	cr_assert(kx_config_validate(&cfg, &err), "%s", err.msg);
	cr_assert_eq(cfg.sasl_mechanisms,
	             (1u << KX_SASL_PLAIN) | (1u << KX_SASL_SCRAM_SHA_256) | (1u << KX_SASL_SCRAM_SHA_512));
	char *printed = print_config(&cfg);
	cr_assert(strstr(printed, "sasl.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN\n"), "%s", printed);
	free(printed);
	cr_assert(load(REGIONAL "sasl.users=/etc/kstretch/sasl.users\nsasl.mechanisms= scram-sha-256 , PLAIN\n"));
	cr_assert(kx_config_validate(&cfg, &err), "%s", err.msg);
	cr_assert_eq(cfg.sasl_mechanisms, (1u << KX_SASL_PLAIN) | (1u << KX_SASL_SCRAM_SHA_256));
	cr_assert_str_eq(cfg.sasl_users, "/etc/kstretch/sasl.users");
	cr_assert_not(load(REGIONAL "sasl.mechanisms=GSSAPI\n"));
	cr_assert(strstr(err.msg, "sasl.mechanisms: 'GSSAPI' is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"), "%s",
	          err.msg);
	cr_assert_not(load(REGIONAL "sasl.mechanisms=,\n"));
	cr_assert(strstr(err.msg, "sasl.mechanisms:"), "%s", err.msg);
	/* Keys of regional mode only, and the certificate only when it is required. */
	cr_assert(load("bootstrap.servers=a:1\nsasl.users=/x\n"));
	cr_assert_not(kx_config_validate(&cfg, &err));
	cr_assert(strstr(err.msg, "sasl.users: set, but mode=mapped"), "%s", err.msg);
	cr_assert(load(REGIONAL "sasl.mtls.identity=true\n"));
	cr_assert_not(kx_config_validate(&cfg, &err));
	cr_assert(strstr(err.msg, "sasl.mtls.identity=true: needs tls.client.auth=required"), "%s", err.msg);
}
