/*
 * admin: the admin HTTP endpoint (admin.listen, 127.0.0.1 by default).
 *
 *   GET /metrics   Prometheus text (metrics.h), names prefixed kstretch_
 *   GET /healthz   200 while the process serves
 *   GET /readyz    200 once the topology is known, 503 before
 *   GET /topology  JSON: brokers (id, address, rack) and kstretch's listener for each
 */
#ifndef KX_ADMIN_H
#define KX_ADMIN_H

#include <event2/event.h>

#include "config.h"

struct kx_admin;

/* Binds admin.listen on base; NULL (logged) when it cannot. */
struct kx_admin *kx_admin_start(struct event_base *base, const struct kx_config *cfg);
/* A reloaded configuration (SIGHUP), in the admin's (main) thread. */
void kx_admin_set_config(struct kx_admin *a, const struct kx_config *cfg);
void kx_admin_free(struct kx_admin *a);

#endif
