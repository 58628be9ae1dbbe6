/*
 * The region's node set as a regional kstretch node reads it from DNS (a
 * Kubernetes headless Service, say): a DNS server inside the test process on
 * 127.0.0.1 answers A and AAAA queries as each test tells it, and the
 * refresher reads it through a private evdns_base that knows only that
 * server, so the system's resolver is never asked. Every wait is bounded in
 * loop turns and time.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/dns_struct.h>
#include <event2/event.h>

#include "regional_nodes.h"

#define NAME "kstretch-headless.eu.svc.cluster.local"
#define PORT 9092

/* ---- the DNS server ------------------------------------------------------ */

enum fake_mode {
	FAKE_ANSWER,   /* the configured addresses (none: NOERROR with no record) */
	FAKE_SERVFAIL, /* rcode SERVFAIL */
	FAKE_NXDOMAIN, /* rcode NXDOMAIN: no such name */
	FAKE_DROP,     /* no answer at all: the client times out */
};

struct fake_dns {
	enum fake_mode mode_a, mode_aaaa;
	struct in_addr a[8];
	int a_cnt;
	struct in6_addr aaaa[8];
	int aaaa_cnt;
	int queries;
};

static struct event_base *base;
static struct evdns_base *dns;
static struct evdns_server_port *server;
static evutil_socket_t server_fd = -1;
static struct fake_dns fake;
static struct kx_nodes_refresher *refresher;

static void fake_answer(struct evdns_server_request *req, void *arg)
{
	struct fake_dns *f = arg;
	f->queries++;
	if (req->nquestions != 1) {
		evdns_server_request_respond(req, DNS_ERR_FORMAT);
		return;
	}
	const struct evdns_server_question *q = req->questions[0];
	enum fake_mode mode = q->type == EVDNS_TYPE_AAAA ? f->mode_aaaa : f->mode_a;
	switch (mode) {
	case FAKE_DROP: evdns_server_request_drop(req); return;
	case FAKE_SERVFAIL: evdns_server_request_respond(req, DNS_ERR_SERVERFAILED); return;
	case FAKE_NXDOMAIN: evdns_server_request_respond(req, DNS_ERR_NOTEXIST); return;
	case FAKE_ANSWER: break;
	}
	if (q->type == EVDNS_TYPE_A && f->a_cnt)
		evdns_server_request_add_a_reply(req, q->name, f->a_cnt, f->a, 0);
	if (q->type == EVDNS_TYPE_AAAA && f->aaaa_cnt)
		evdns_server_request_add_aaaa_reply(req, q->name, f->aaaa_cnt, f->aaaa, 0);
	evdns_server_request_respond(req, 0);
}

/* The A answer: addresses in this order ("" for none). */
static void answer_a(const char *a0, const char *a1, const char *a2)
{
	const char *in[] = {a0, a1, a2};
	fake.mode_a = FAKE_ANSWER;
	fake.a_cnt = 0;
	for (int i = 0; i < 3; i++)
		if (in[i] && in[i][0])
			cr_assert_eq(inet_pton(AF_INET, in[i], &fake.a[fake.a_cnt++]), 1);
}

static void setup(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	char ns[64];

	memset(&fake, 0, sizeof(fake));
	base = event_base_new();
	cr_assert(base);
	server_fd = socket(AF_INET, SOCK_DGRAM, 0);
	cr_assert(server_fd >= 0);
	cr_assert_eq(bind(server_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert_eq(getsockname(server_fd, (struct sockaddr *)&sin, &len), 0);
	cr_assert_eq(evutil_make_socket_nonblocking(server_fd), 0);
	server = evdns_add_server_port_with_base(base, server_fd, 0, fake_answer, &fake);
	cr_assert(server);

	/* A private resolver: no resolv.conf, no hosts file, one name server (ours), quick timeouts. */
	dns = evdns_base_new(base, 0);
	cr_assert(dns);
	snprintf(ns, sizeof(ns), "127.0.0.1:%u", ntohs(sin.sin_port));
	cr_assert_eq(evdns_base_nameserver_ip_add(dns, ns), 0);
	cr_assert_eq(evdns_base_set_option(dns, "timeout:", "0.2"), 0);
	cr_assert_eq(evdns_base_set_option(dns, "attempts:", "1"), 0);
	cr_assert_eq(evdns_base_set_option(dns, "randomize-case:", "0"), 0);
}

/* Runs the loop in turns of at most 10 ms until pred(arg) holds or timeout_ms passes. */
static bool run_until(bool (*pred)(uint64_t), uint64_t arg, int timeout_ms)
{
	for (int turn = 0; turn < timeout_ms / 10 && !pred(arg); turn++) {
		struct timeval tv = {.tv_sec = 0, .tv_usec = 10000};
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	return pred(arg);
}

static void teardown(void)
{
	kx_nodes_refresher_free(refresher);
	refresher = NULL;
	/* A cancelled lookup's callbacks run on the next turns: let them free it. */
	for (int turn = 0; turn < 5; turn++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	evdns_base_free(dns, 0);
	evdns_close_server_port(server);
	evutil_closesocket(server_fd);
	event_base_free(base);
	kx_nodes_clear();
}

TestSuite(regional_nodes, .init = setup, .fini = teardown);

static struct kx_nodes_stats stats(void)
{
	struct kx_nodes_stats s;
	kx_nodes_refresher_stats(refresher, &s);
	return s;
}

static bool changes_reach(uint64_t n)
{
	return stats().changes >= n;
}

static bool lookups_reach(uint64_t n)
{
	return stats().lookups >= n;
}

static bool queries_reach(uint64_t n)
{
	return (uint64_t)fake.queries >= n;
}

static void start(int refresh_ms)
{
	struct kx_nodes_source src = {
	    .dns_name = NAME, .dns_port = PORT, .refresh_ms = refresh_ms, .self_id = -1};
	refresher = kx_nodes_refresher_new(base, dns, &src);
	cr_assert(refresher);
}

/* The set the refresher should hold: "ADDR:PORT,..." numbered as regional.nodes numbers id-less nodes. */
static void assert_current_set(const char *expect)
{
	static struct kr_regional_nodes want;
	char why[256];
	kr_regional_nodes_init(&want);
	cr_assert(kr_regional_nodes_parse(&want, expect, why, sizeof(why)), "%s", why);
	cr_assert(kr_regional_nodes_finish(&want, why, sizeof(why)), "%s", why);
	struct kx_nodes *cur = kx_nodes_get();
	cr_assert(cur, "no set published");
	cr_assert_eq(cur->set.cnt, want.cnt, "%zu nodes, want %s", cur->set.cnt, expect);
	for (size_t i = 0; i < want.cnt; i++) {
		cr_assert_eq(cur->set.ids[i], want.ids[i]);
		cr_assert_str_eq(cur->set.nodes[i].host, want.nodes[i].host);
		cr_assert_eq(cur->set.nodes[i].port, PORT);
		cr_assert_eq(cur->set.ids[i], kr_regional_node_id(want.nodes[i].host, PORT));
	}
	cr_assert(kr_regional_nodes_equal(&cur->set, &want));
	cr_assert_eq(cur->digest, kr_regional_nodes_digest(&want));
	kx_nodes_put(cur);
}

Test(regional_nodes, the_first_answer_is_the_set_and_a_changed_answer_replaces_it)
{
	struct kx_nodes_cache cache = {0};
	answer_a("10.0.0.1", "10.0.0.2", "");
	start(50);
	cr_assert_null(kx_nodes_cached(&cache), "nothing published before the first answer");
	cr_assert(run_until(changes_reach, 1, 3000), "no set after 3 s");
	assert_current_set("10.0.0.1:9092,10.0.0.2:9092");
	cr_assert_eq(stats().state, KX_NODES_OK);
	cr_assert_eq(stats().node_cnt, 2);
	const struct kx_nodes *first = kx_nodes_cached(&cache);
	cr_assert(first);
	uint64_t generation = first->generation;

	/* A node joins and one leaves: the set follows within a refresh or two. */
	answer_a("10.0.0.3", "10.0.0.2", "");
	cr_assert(run_until(changes_reach, 2, 3000), "the new answer was not taken");
	assert_current_set("10.0.0.2:9092,10.0.0.3:9092");
	const struct kx_nodes *second = kx_nodes_cached(&cache);
	cr_assert(second && second->generation > generation, "the worker's cache sees the new set");
	cr_assert_eq(stats().node_cnt, 2);
	kx_nodes_cache_drop(&cache);
}

Test(regional_nodes, the_same_addresses_in_another_order_publish_nothing_new)
{
	answer_a("10.0.0.1", "10.0.0.2", "10.0.0.3");
	start(30);
	cr_assert(run_until(changes_reach, 1, 3000));
	struct kx_nodes_cache cache = {0};
	const struct kx_nodes *first = kx_nodes_cached(&cache);
	answer_a("10.0.0.3", "10.0.0.1", "10.0.0.2"); /* round-robin rotation, as DNS servers do */
	uint64_t lookups = stats().lookups;
	cr_assert(run_until(lookups_reach, lookups + 4, 3000));
	cr_assert_eq(stats().changes, 1);
	cr_assert_eq(kx_nodes_cached(&cache), first, "the cached set is still the one first published");
	kx_nodes_cache_drop(&cache);
}

/* The last good set stays through a bad spell, and one line is logged for it, not one per refresh. */
static void assert_kept_through(enum fake_mode mode_a, enum fake_mode mode_aaaa, enum kx_nodes_state expect)
{
	answer_a("10.0.0.1", "10.0.0.2", "");
	start(30);
	cr_assert(run_until(changes_reach, 1, 3000));
	struct kx_nodes *good = kx_nodes_get();
	uint64_t state_changes = stats().state_changes, lookups = stats().lookups;

	fake.mode_a = mode_a;
	fake.mode_aaaa = mode_aaaa;
	cr_assert(run_until(lookups_reach, lookups + 3, 5000), "3 lookups in 5 s");
	struct kx_nodes_stats s = stats();
	cr_assert_eq(s.state, expect, "state %s", kx_nodes_state_name(s.state));
	cr_assert_eq(s.state_changes, state_changes + 1, "one change of state for 3 bad lookups");
	cr_assert_eq(s.changes, 1, "nothing published");
	struct kx_nodes *cur = kx_nodes_get();
	cr_assert_eq(cur, good, "the last good set stays current");
	kx_nodes_put(cur);
	assert_current_set("10.0.0.1:9092,10.0.0.2:9092");

	/* The same answer again: back to OK, the same set (nothing published). */
	fake.mode_a = fake.mode_aaaa = FAKE_ANSWER;
	lookups = stats().lookups;
	cr_assert(run_until(lookups_reach, lookups + 2, 3000));
	s = stats();
	cr_assert_eq(s.state, KX_NODES_OK);
	cr_assert_eq(s.state_changes, state_changes + 2);
	cr_assert_eq(s.changes, 1);
	cur = kx_nodes_get();
	cr_assert_eq(cur, good);
	kx_nodes_put(cur);
	kx_nodes_put(good);
}

Test(regional_nodes, servfail_keeps_the_last_good_set)
{
	assert_kept_through(FAKE_SERVFAIL, FAKE_SERVFAIL, KX_NODES_FAILING);
}

Test(regional_nodes, a_timeout_keeps_the_last_good_set)
{
	assert_kept_through(FAKE_DROP, FAKE_DROP, KX_NODES_FAILING);
}

Test(regional_nodes, a_failed_aaaa_query_keeps_the_last_set_rather_than_half_an_answer)
{
	assert_kept_through(FAKE_ANSWER, FAKE_SERVFAIL, KX_NODES_FAILING);
}

Test(regional_nodes, an_answer_without_addresses_keeps_the_last_good_set)
{
	answer_a("10.0.0.1", "10.0.0.2", "");
	start(30);
	cr_assert(run_until(changes_reach, 1, 3000));
	struct kx_nodes *good = kx_nodes_get();
	uint64_t state_changes = stats().state_changes, lookups = stats().lookups;
	answer_a("", "", ""); /* NOERROR, no record: every pod of the Service is gone or not ready */
	cr_assert(run_until(lookups_reach, lookups + 3, 3000));
	cr_assert_eq(stats().state, KX_NODES_EMPTY);
	cr_assert_eq(stats().state_changes, state_changes + 1);
	struct kx_nodes *cur = kx_nodes_get();
	cr_assert_eq(cur, good);
	kx_nodes_put(cur);
	kx_nodes_put(good);
	assert_current_set("10.0.0.1:9092,10.0.0.2:9092");
}

Test(regional_nodes, no_such_name_keeps_the_last_good_set)
{
	assert_kept_through(FAKE_NXDOMAIN, FAKE_NXDOMAIN, KX_NODES_EMPTY);
}

Test(regional_nodes, ipv4_and_ipv6_answers_make_one_set)
{
	answer_a("10.0.0.1", "", "");
	cr_assert_eq(inet_pton(AF_INET6, "fd00::7", &fake.aaaa[0]), 1);
	cr_assert_eq(inet_pton(AF_INET6, "fd00::1:2", &fake.aaaa[1]), 1);
	fake.aaaa_cnt = 2;
	start(50);
	cr_assert(run_until(changes_reach, 1, 3000));
	assert_current_set("10.0.0.1:9092,[fd00::7]:9092,[fd00::1:2]:9092");
}

Test(regional_nodes, a_repeated_address_is_one_node)
{
	answer_a("10.0.0.1", "10.0.0.1", "10.0.0.2");
	start(50);
	cr_assert(run_until(changes_reach, 1, 3000));
	assert_current_set("10.0.0.1:9092,10.0.0.2:9092");
}

Test(regional_nodes, nothing_is_published_until_a_first_good_answer)
{
	fake.mode_a = fake.mode_aaaa = FAKE_SERVFAIL;
	start(50);
	cr_assert(run_until(lookups_reach, 2, 3000));
	cr_assert_null(kx_nodes_get());
	cr_assert_eq(stats().state, KX_NODES_FAILING);
	cr_assert_eq(stats().node_cnt, 0);
	answer_a("10.0.0.9", "", "");
	fake.mode_aaaa = FAKE_ANSWER;
	cr_assert(run_until(changes_reach, 1, 3000));
	assert_current_set("10.0.0.9:9092");
}

Test(regional_nodes, freeing_the_refresher_mid_lookup_is_safe)
{
	fake.mode_a = fake.mode_aaaa = FAKE_DROP; /* the first lookup stays in flight */
	start(50);
	cr_assert(run_until(queries_reach, 2, 1000), "the A and AAAA queries reach the server");
	cr_assert_eq(stats().lookups, 0);
	kx_nodes_refresher_free(refresher);
	refresher = NULL; /* teardown runs the cancelled callbacks; ASan checks nothing leaks or is reused */
}

Test(regional_nodes, a_fixed_list_is_published_at_once)
{
	static struct kr_regional_nodes fixed;
	char why[128];
	kr_regional_nodes_init(&fixed);
	cr_assert(kr_regional_nodes_parse(&fixed, "2@kstretch-2.eu:9092,1@kstretch-1.eu:9092", why, sizeof(why)));
	cr_assert(kr_regional_nodes_finish(&fixed, why, sizeof(why)));
	struct kx_nodes_source src = {.fixed = &fixed, .self_id = 1};
	refresher = kx_nodes_refresher_new(base, NULL, &src);
	cr_assert(refresher);
	struct kx_nodes *cur = kx_nodes_get();
	cr_assert(cur);
	cr_assert(kr_regional_nodes_equal(&cur->set, &fixed));
	kx_nodes_put(cur);
	cr_assert_eq(stats().state, KX_NODES_OK);
	cr_assert_eq(stats().changes, 1);
	cr_assert_eq(fake.queries, 0, "a fixed list asks no DNS server");
}

Test(regional_nodes, the_source_comes_from_the_configuration)
{
	static struct kx_config cfg;
	struct kx_config_error err;
	struct kx_nodes_source src;
	kx_config_defaults(&cfg);
	const char *text = "mode=regional\nregion=eu\nregional.nodes.dns=" NAME ":9093\nregional.nodes.refresh.ms=2000\n"
	                   "node.id=5\n";
	cr_assert(kx_config_load_buffer(&cfg, "t", text, strlen(text), &err), "%s", err.msg);
	kx_nodes_source_from_config(&cfg, &src);
	cr_assert_null(src.fixed);
	cr_assert_str_eq(src.dns_name, NAME);
	cr_assert_eq(src.dns_port, 9093);
	cr_assert_eq(src.refresh_ms, 2000);
	cr_assert_eq(src.self_id, 5);
}
