/*
 * The topology snapshot: brokers with their regions, topics with their
 * partitions, merged from what Metadata responses say, and printed for people.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "metrics.h"
#include "topology.h"
#include "topology_print.h"

static struct kx_config cfg;

/* What the topology is built with, from cfg as it is now. */
static const struct kr_topology_rules *rules(void)
{
	static struct kr_topology_rules r;
	kx_config_topology(&cfg, &r);
	return &r;
}

static void setup(void)
{
	struct kx_config_error err;
	kx_config_defaults(&cfg);
	cr_assert(kx_config_set(&cfg, "bootstrap.servers", "10.0.0.1:9092", "test", &err));
	cr_assert(kx_config_set(&cfg, "advertised.host", "proxy.local", "test", &err));
	cr_assert(kx_config_set(&cfg, "region.map", "dr-*=eu", "test", &err));
	cr_assert(kx_config_set(&cfg, "broker.port.map", "9=29009", "test", &err));
}

static void teardown(void)
{
	kx_topology_clear();
}

TestSuite(topology, .init = setup, .fini = teardown);

/* Six brokers over three regions, as the simulator lays them out (1=eu-a, 2=us-a, 3=ap-a, 4=eu-b, ...). */
static void publish_brokers(void)
{
	static const char *const racks[] = {"eu-a", "us-a", "ap-a", "eu-b", "us-b", "dr-x"};
	struct kx_broker b[6];
	memset(b, 0, sizeof(b));
	for (int i = 0; i < 6; i++) {
		b[i].node_id = 6 - i; /* unsorted on purpose */
		snprintf(b[i].host, sizeof(b[i].host), "kafka-%d.internal", 6 - i);
		b[i].port = 9092;
		strcpy(b[i].rack, racks[5 - i]);
	}
	kx_topology_publish(kx_topology_new(rules(), b, 6));
}

static const uint8_t orders_id[16] = {0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/* orders: partitions 0..n-1, RF 3 over the three regions, leaders rotating. */
static struct kx_topic *orders(int n, int leader_shift)
{
	struct kx_topic *tp = kx_topic_new("orders", 6, orders_id, (size_t)n, (size_t)n * 6);
	cr_assert_not_null(tp);
	for (int p = n - 1; p >= 0; p--) { /* added out of order: finish sorts */
		int32_t replicas[3] = {1 + (p + leader_shift) % 3, 1 + (p + leader_shift + 1) % 3,
		                       1 + (p + leader_shift + 2) % 3};
		cr_assert(kx_topic_add_partition(tp, p, replicas[0], 5, 0, replicas, 3, replicas, 3));
	}
	cr_assert_not(kx_topic_add_partition(tp, n, 1, 0, 0, NULL, 0, NULL, 0), "no room past what was asked for");
	kx_topic_finish(tp);
	return tp;
}

Test(topology, brokers_get_regions_and_listeners)
{
	publish_brokers();
	struct kx_topology *t = kx_topology_get();
	cr_assert_eq(t->broker_cnt, 6);
	cr_assert_eq(t->brokers[0].node_id, 1, "sorted by node id");
	const struct kx_broker *b = kx_topology_broker(t, 2);
	cr_assert_str_eq(b->rack, "us-a");
	cr_assert_str_eq(b->region, "us", "the default rule strips the zone");
	cr_assert_eq(b->listen_port, 19002);
	cr_assert_str_eq(kx_topology_broker(t, 6)->region, "eu", "region.map first");
	cr_assert_str_eq(kx_topology_broker(t, 1)->region, kx_topology_broker(t, 4)->region);
	cr_assert_str_neq(kx_topology_broker(t, 1)->region, kx_topology_broker(t, 2)->region);
	cr_assert_str_eq(kx_region_name(kx_region_index(kx_topology_broker(t, 3)->region)), "ap");
	cr_assert_null(kx_topology_broker(t, 7));
	kx_topology_put(t);
}

Test(topology, metadata_topics_are_found_by_name_and_id)
{
	publish_brokers();
	struct kx_topic *in[] = {orders(12, 0)};
	cr_assert(kx_topology_merge_topics(rules(), NULL, 0, in, 1));
	struct kx_topology *t = kx_topology_get();
	cr_assert_eq(t->broker_cnt, 6, "brokers stay");
	const struct kx_topic *tp = kx_topology_topic(t, "orders-and-more", 6);
	cr_assert_not_null(tp, "by name, length given");
	cr_assert_eq(kx_topology_topic_by_id(t, orders_id), tp);
	cr_assert_null(kx_topology_topic(t, "order", 5));
	cr_assert_null(kx_topology_topic(t, "", 0));
	const struct kx_partition *p = kx_topic_partition(tp, 4);
	cr_assert_eq(p->index, 4);
	cr_assert_eq(p->leader, 2);
	cr_assert_eq(p->isr_cnt, 3);
	cr_assert_eq(p->isr[1], 3);
	cr_assert_eq(p->replicas[2], 1);
	cr_assert_null(kx_topic_partition(tp, 12));
	kx_topology_put(t);
}

/* Found by fuzz_rewrite: a name from the wire with NUL bytes in it was read as a C string. */
Test(topology, a_name_with_nul_bytes_is_another_name_and_is_read_by_its_length)
{
	publish_brokers();
	struct kx_topic *in[] = {orders(2, 0)};
	cr_assert(kx_topology_merge_topics(rules(), NULL, 0, in, 1));
	struct kx_topology *t = kx_topology_get();
	cr_assert_not_null(kx_topology_topic(t, "orders", 6));
	cr_assert_null(kx_topology_topic(t, "orders\0", 7));
	cr_assert_null(kx_topology_topic(t, "orders\0\0\0\0\0\0\0\0\0\0", 16));
	cr_assert_null(kx_topology_topic(t, "order", 5));
	cr_assert_null(kx_topology_topic(t, "orders2", 7));
	kx_topology_put(t);
}

Test(topology, sparse_partition_indexes_are_found)
{
	struct kx_topic *tp = kx_topic_new("sparse", 6, NULL, 3, 0);
	cr_assert(kx_topic_add_partition(tp, 7, 1, 0, 0, NULL, 0, NULL, 0));
	cr_assert(kx_topic_add_partition(tp, 2, 1, 0, 0, NULL, 0, NULL, 0));
	cr_assert(kx_topic_add_partition(tp, 40, 1, 0, 0, NULL, 0, NULL, 0));
	kx_topic_finish(tp);
	cr_assert_eq(kx_topic_partition(tp, 7)->index, 7);
	cr_assert_eq(kx_topic_partition(tp, 40)->index, 40);
	cr_assert_null(kx_topic_partition(tp, 1));
	cr_assert_not(tp->has_id);
	kx_topic_put(tp);
}

Test(topology, an_unchanged_topic_publishes_nothing_and_a_changed_one_replaces_it)
{
	publish_brokers();
	struct kx_topic *first[] = {orders(12, 0)};
	cr_assert(kx_topology_merge_topics(rules(), NULL, 0, first, 1));
	struct kx_topology *before = kx_topology_get();
	const struct kx_topic *kept = kx_topology_topic(before, "orders", 6);

	struct kx_topic *same[] = {orders(12, 0)};
	cr_assert_not(kx_topology_merge_topics(rules(), NULL, 0, same, 1), "nothing new");
	struct kx_topology *t = kx_topology_get();
	cr_assert_eq(t, before);
	kx_topology_put(t);

	/* Leaders moved: a new snapshot; the old one stays valid for who holds it. */
	struct kx_topic *moved[] = {orders(12, 1), kx_topic_new("audit", 5, NULL, 0, 0)};
	kx_topic_finish(moved[1]);
	cr_assert(kx_topology_merge_topics(rules(), NULL, 0, moved, 2));
	t = kx_topology_get();
	cr_assert_neq(t, before);
	cr_assert_gt(t->generation, before->generation);
	cr_assert_eq(t->topic_cnt, 2);
	cr_assert_eq(kx_topic_partition(kx_topology_topic(t, "orders", 6), 0)->leader, 2);
	cr_assert_eq(kx_topic_partition(kept, 0)->leader, 1, "what a reader holds does not change");
	kx_topology_put(before);

	/* Another topic later: orders is shared, not copied. */
	const struct kx_topic *orders_now = kx_topology_topic(t, "orders", 6);
	struct kx_topic *more[] = {kx_topic_new("billing", 7, NULL, 0, 0)};
	kx_topic_finish(more[0]);
	cr_assert(kx_topology_merge_topics(rules(), NULL, 0, more, 1));
	struct kx_topology *t2 = kx_topology_get();
	cr_assert_eq(t2->topic_cnt, 3);
	cr_assert_eq(kx_topology_topic(t2, "orders", 6), orders_now);
	kx_topology_put(t2);
	kx_topology_put(t);
}

Test(topology, a_deleted_topic_is_removed_by_its_tombstone)
{
	publish_brokers();
	struct kx_topic *in[] = {orders(3, 0)};
	cr_assert(kx_topology_merge_topics(rules(), NULL, 0, in, 1));
	struct kx_topic *gone = kx_topic_new("orders", 6, NULL, 0, 0);
	gone->gone = true;
	cr_assert(kx_topology_merge_topics(rules(), NULL, 0, &gone, 1));
	struct kx_topology *t = kx_topology_get();
	cr_assert_eq(t->topic_cnt, 0);
	cr_assert_null(kx_topology_topic_by_id(t, orders_id));
	kx_topology_put(t);
	struct kx_topic *again = kx_topic_new("never-known", 11, NULL, 0, 0);
	again->gone = true;
	cr_assert_not(kx_topology_merge_topics(rules(), NULL, 0, &again, 1), "a tombstone of nothing changes nothing");
}

Test(topology, a_topic_named_twice_in_one_response_is_kept_once)
{
	publish_brokers();
	struct kx_topic *in[] = {orders(3, 0), orders(3, 1)};
	cr_assert(kx_topology_merge_topics(rules(), NULL, 0, in, 2));
	struct kx_topology *t = kx_topology_get();
	cr_assert_eq(t->topic_cnt, 1);
	cr_assert_eq(kx_topic_partition(kx_topology_topic(t, "orders", 6), 0)->leader, 2, "the last one says it");
	kx_topology_put(t);
}

Test(topology, brokers_merge_as_before)
{
	publish_brokers();
	struct kx_broker seen = {.node_id = 9, .port = 9092, .host = "kafka-9", .rack = "ap-b"};
	cr_assert(kx_topology_merge(rules(), &seen, 1));
	cr_assert_not(kx_topology_merge(rules(), &seen, 1));
	struct kx_topology *t = kx_topology_get();
	cr_assert_eq(t->broker_cnt, 7);
	cr_assert_eq(kx_topology_broker(t, 9)->listen_port, 29009);
	cr_assert_str_eq(kx_topology_broker(t, 9)->region, "ap");
	kx_topology_put(t);
}

/* ---- the data path's lock-free lookup ---------------------------------- */

Test(topology, a_cache_follows_the_published_snapshot_without_a_reference_per_lookup)
{
	struct kx_topology_cache c = {0};
	cr_assert_null(kx_topology_cached(&c), "nothing published yet");
	publish_brokers();
	struct kx_topology *first = kx_topology_get();
	const struct kx_topology *t = kx_topology_cached(&c);
	cr_assert_eq(t, first);
	int refs = atomic_load(&first->refs);
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(kx_topology_cached(&c), first);
	cr_assert_eq(atomic_load(&first->refs), refs, "no reference taken or dropped per lookup");

	struct kx_topic *in[] = {orders(4, 0)};
	cr_assert(kx_topology_merge_topics(rules(), NULL, 0, in, 1));
	cr_assert_eq(atomic_load(&first->refs), 2, "the cache and this test still hold the old one");
	t = kx_topology_cached(&c);
	cr_assert_neq(t, first, "a new snapshot is picked up at the next lookup");
	cr_assert_not_null(kx_topology_topic(t, "orders", 6));
	cr_assert_eq(atomic_load(&first->refs), 1, "the cache let go of the old one");
	kx_topology_put(first);

	kx_topology_clear();
	cr_assert_null(kx_topology_cached(&c), "cleared: nothing");
	kx_topology_cache_drop(&c);
	cr_assert_null(c.topology);
}

/* Workers look up while another thread publishes: no snapshot is freed under a reader (ASan run). */
static atomic_bool publishing;

static atomic_int lookup_errors;

static void *lookups(void *arg)
{
	(void)arg;
	struct kx_topology_cache c = {0};
	uint64_t seen = 0;
	for (int i = 0; i < 200000 && (atomic_load(&publishing) || i < 1000); i++) {
		const struct kx_topology *t = kx_topology_cached(&c);
		const struct kx_broker *b = kx_topology_broker(t, 2);
		/* criterion's asserts belong to the test's thread: count here, assert there */
		if (!b || strcmp(b->rack, "us-a") != 0 || t->generation < seen)
			atomic_fetch_add(&lookup_errors, 1);
		seen = t->generation;
	}
	kx_topology_cache_drop(&c);
	return NULL;
}

Test(topology, lookups_from_many_threads_while_snapshots_are_published)
{
	publish_brokers();
	atomic_store(&publishing, true);
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, lookups, NULL), 0);
	for (int i = 0; i < 300; i++) {
		struct kx_topic *in[] = {orders(4 + i % 7, i)};
		kx_topology_merge_topics(rules(), NULL, 0, in, 1);
	}
	atomic_store(&publishing, false);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(atomic_load(&lookup_errors), 0);
}

static char *print(const struct kx_topology *t)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	kx_topology_print(t, &cfg, out);
	fclose(out);
	return buf;
}

Test(topology, print_shows_brokers_regions_listeners_and_topics)
{
	struct kx_config_error err;
	cr_assert(kx_config_set(&cfg, "listener.rack.9092", "us-b", "test", &err));
	cr_assert(kx_config_set(&cfg, "rack.cidr", "10.1.0.0/16=eu-a,fd00::/8=ap-a", "test", &err));
	cr_assert(kx_config_set(&cfg, "rack", "us-a", "test", &err));
	publish_brokers();
	struct kx_topic *in[] = {orders(12, 0)};
	cr_assert(kx_topology_merge_topics(rules(), NULL, 0, in, 1));
	struct kx_topology *t = kx_topology_get();
	char *s = print(t);
	const char *expect[] = {
	    "brokers: 6\n",
	    "  2      us-a             us               kafka-2.internal:9092        proxy.local:19002\n",
	    "  6      dr-x             eu               kafka-6.internal:9092        proxy.local:19006\n",
	    "  127.0.0.1:9092               bootstrap, clients in rack us-b\n",
	    "  127.0.0.1:19003              node 3\n",
	    "  2. listener.rack.<port>: 9092=us-b\n",
	    "  3. rack.cidr: 10.1.0.0/16=eu-a,fd00::/8=ap-a\n",
	    "  4. rack: us-a (region us)\n",
	    "fetch.rack.inject=true fetch.prefer.local=true fetch.prefer.local.backoff.ms=30000\n",
	    "regions: 3 (region.map)\n",
	    "  eu: nodes 1,4,6\n",
	    "  us: nodes 2,5\n",
	    "topics: 1\n",
	    "  orders: 12 partitions; leaders eu 4 us 4 ap 4; an in-sync replica in eu 12 us 12 ap 12\n",
	};
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
		cr_assert(strstr(s, expect[i]), "missing:\n%s\nin:\n%s", expect[i], s);
	free(s);
	kx_topology_put(t);
	s = print(NULL);
	cr_assert(strstr(s, "brokers: 0\n"), "%s", s);
	free(s);
}

Test(topology, region_bytes_are_counted_per_pair_and_printed)
{
	int eu = kx_region_index("eu"), us = kx_region_index("us");
	cr_assert_gt(eu, 0);
	cr_assert_neq(eu, us);
	cr_assert_eq(kx_region_index("eu"), eu, "an index never changes");
	cr_assert_eq(kx_region_index(""), 0);
	cr_assert_eq(kx_region_index(NULL), 0);
	cr_assert_str_eq(kx_region_name(0), "unknown");
	cr_assert_str_eq(kx_region_name(us), "us");
	int odd = kx_region_index("we\"ird");
	KX_REGION_BYTES_ADD(us, eu, KX_FROM_BROKER, 1000);
	KX_REGION_BYTES_ADD(us, eu, KX_FROM_BROKER, 24);
	KX_REGION_BYTES_ADD(us, us, KX_TO_BROKER, 7);
	KX_REGION_BYTES_ADD(odd, 0, KX_TO_BROKER, 1);
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	kx_metrics_write(out);
	fclose(out);
	cr_assert(strstr(buf, "# TYPE kstretch_fetch_redirects counter\n"), "%s", buf);
	cr_assert(
	    strstr(buf,
	           "kstretch_region_bytes{client_region=\"us\",broker_region=\"eu\",direction=\"from_broker\"} 1024\n"),
	    "%s", buf);
	cr_assert(
	    strstr(buf, "kstretch_region_bytes{client_region=\"us\",broker_region=\"us\",direction=\"to_broker\"} 7\n"),
	    "%s", buf);
	cr_assert(strstr(buf, "client_region=\"we\\\"ird\",broker_region=\"unknown\""), "%s", buf);
	cr_assert_null(strstr(buf, "direction=\"to_broker\"} 0"), "pairs without bytes are left out");
	free(buf);
	for (int i = 0; i < 40; i++) {
		char name[16];
		snprintf(name, sizeof(name), "r%d", i);
		int k = kx_region_index(name);
		cr_assert(k >= 0 && k < KX_REGIONS_MAX);
	}
	cr_assert_eq(kx_region_index("r39"), 0, "past the limit: unknown");
}

/* Each worker counts in its own shard; a scrape shows the sum, under the same names. */
static int eu_idx;

static void *count_as_worker(void *arg)
{
	kx_metrics_thread((int)(intptr_t)arg);
	for (int i = 0; i < 10000; i++) {
		KX_METRIC_ADD(requests_forwarded, 1);
		KX_REGION_BYTES_ADD(eu_idx, eu_idx, KX_TO_BROKER, 3);
	}
	KX_METRIC_ADD(connections_active, 2);
	KX_METRIC_SUB(connections_active, 1);
	return NULL;
}

Test(topology, worker_counters_are_summed_when_scraped)
{
	eu_idx = kx_region_index("eu");
	cr_assert_gt(eu_idx, 0);
	uint64_t before = KX_METRIC_VALUE(requests_forwarded), active = KX_METRIC_VALUE(connections_active);
	KX_METRIC_ADD(requests_forwarded, 5); /* this thread: shard 0 */
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, count_as_worker, (void *)(intptr_t)(i * 17)), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(KX_METRIC_VALUE(requests_forwarded), before + 40005);
	cr_assert_eq(KX_METRIC_VALUE(connections_active), active + 4);
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	kx_metrics_write(out);
	fclose(out);
	char want[128];
	snprintf(want, sizeof(want), "\nkstretch_requests_forwarded %llu\n", (unsigned long long)before + 40005);
	cr_assert(strstr(buf, want), "%s", buf);
	cr_assert(strstr(buf, "kstretch_region_bytes{client_region=\"eu\",broker_region=\"eu\",direction=\"to_broker\"} "
	                      "120000\n"),
	          "%s", buf);
	free(buf);
}

Test(topology, a_regional_fetch_reads_from_an_in_sync_replica_of_the_region_else_the_leader)
{
	publish_brokers(); /* 1 eu-a, 2 us-a, 3 ap-a, 4 eu-b, 5 us-b, 6 dr-x (eu by region.map) */
	struct kx_topology *t = kx_topology_get();
	int32_t us_led[] = {2, 1, 3}, eu_led[] = {4, 2, 3}, two_eu[] = {2, 1, 4}, no_eu[] = {2, 3, 5};
	struct kx_partition p = {.index = 0, .leader = 2, .replica_cnt = 3, .isr_cnt = 3, .replicas = us_led,
	                         .isr = us_led};
	cr_assert_eq(kx_partition_read_replica(t, &p, "eu", 7, true), 1, "the eu follower");
	cr_assert_eq(kx_partition_read_replica(t, &p, "eu", 7, false), 2, "below Fetch v11: the leader only");
	cr_assert_eq(kx_partition_read_replica(t, &p, "", 7, true), 2, "no region: the leader");
	p.isr_cnt = 1; /* the eu replica fell out of sync */
	cr_assert_eq(kx_partition_read_replica(t, &p, "eu", 7, true), 2);
	p = (struct kx_partition){.leader = 4, .replica_cnt = 3, .isr_cnt = 3, .replicas = eu_led, .isr = eu_led};
	cr_assert_eq(kx_partition_read_replica(t, &p, "eu", 7, true), 4, "a local leader stays the choice");
	p = (struct kx_partition){.leader = 2, .replica_cnt = 3, .isr_cnt = 3, .replicas = two_eu, .isr = two_eu};
	int32_t a = kx_partition_read_replica(t, &p, "eu", 0, true), b = kx_partition_read_replica(t, &p, "eu", 1, true);
	cr_assert(a != b && (a == 1 || a == 4) && (b == 1 || b == 4), "the key spreads partitions over eu replicas");
	cr_assert_eq(kx_partition_read_replica(t, &p, "eu", 0, true), a, "the same key, the same replica");
	p = (struct kx_partition){.leader = 2, .replica_cnt = 3, .isr_cnt = 3, .replicas = no_eu, .isr = no_eu};
	cr_assert_eq(kx_partition_read_replica(t, &p, "eu", 7, true), 2, "no eu replica: the leader");
	p.leader = -1;
	cr_assert_eq(kx_partition_read_replica(t, &p, "eu", 7, true), -1);
	kx_topology_put(t);
}
