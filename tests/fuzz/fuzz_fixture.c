#include "fuzz_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const uint8_t fuzz_topic_id[16] = {0xf0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

static void fuzz_fixture_setup(struct fuzz_fixture *f)
{
	static const char *const keys[][2] = {
	    {"bootstrap.servers", "10.0.0.1:9092"}, {"advertised.host", "proxy.local"},
	    {"fetch.prefer.local", "true"},         {"fetch.rack.inject", "true"},
	};
	struct kx_config_error err;
	kx_config_defaults(&f->cfg);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!kx_config_set(&f->cfg, keys[i][0], keys[i][1], "fuzz", &err)) {
			fprintf(stderr, "fuzz fixture: %s\n", err.msg);
			abort();
		}
	kx_rewriter_init(&f->rw);
}

static void fuzz_fixture_publish(const struct kx_config *cfg)
{
	static const char *const racks[] = {"eu-a", "us-a", "ap-a", "us-b"};
	struct kx_broker b[4];
	memset(b, 0, sizeof(b));
	for (int i = 0; i < 4; i++) {
		b[i].node_id = i + 1;
		snprintf(b[i].host, sizeof(b[i].host), "kafka-%d.internal", i + 1);
		b[i].port = 9092;
		snprintf(b[i].rack, sizeof(b[i].rack), "%s", racks[i]);
	}
	kx_topology_clear();
	struct kr_topology_rules rules;
	kx_config_topology(cfg, &rules);
	kx_topology_publish(kx_topology_new(&rules, b, 4));
	struct kx_topic *tp = kx_topic_new("orders", 6, fuzz_topic_id, 8, (size_t)8 * 6);
	if (!tp)
		abort();
	for (int32_t p = 0; p < 8; p++) {
		static const int32_t even[] = {1, 2, 4}, odd[] = {1, 3};
		const int32_t *isr = p % 2 ? odd : even;
		size_t n = p % 2 ? 2 : 3;
		if (!kx_topic_add_partition(tp, p, 1, 5, 0, isr, n, isr, n))
			abort();
	}
	kx_topic_finish(tp);
	kx_topology_merge_topics(&rules, NULL, 0, &tp, 1);
}

void fuzz_fixture_reset(struct fuzz_fixture *f)
{
	static bool ready;
	if (!ready) {
		fuzz_fixture_setup(f);
		ready = true;
	}
	if (f->topology)
		kx_topology_put(f->topology);
	kr_steer_table_free(&f->steer);
	fuzz_fixture_publish(&f->cfg);
	f->topology = kx_topology_get();
	f->view = (struct kx_client_view){.rack = "us-a",
	                                  .region = "us",
	                                  .learn_topics = true,
	                                  .broker_id = 1,
	                                  .topology = f->topology,
	                                  .steer = &f->steer,
	                                  .now_ms = 1000};
}
