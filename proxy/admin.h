/*
 * admin: the admin HTTP endpoint (admin.listen, 127.0.0.1 by default).
 *
 *   GET /metrics      Prometheus text (metrics.h), names prefixed kstretch_
 *   GET /healthz      200 while the process serves (open even with admin.token)
 *   GET /readyz       200 while the topology is known and a bootstrap server answered
 *                     Metadata within metadata.max.age.ms; 503 with the reason otherwise
 *   GET /topology     JSON: brokers (id, address, rack) and kstretch's listener for each
 *   GET /connections  JSON: every client and shared upstream connection (conns.h)
 *
 * With admin.token (or admin.token.file) every path but /healthz wants
 * Authorization: Bearer TOKEN (401 without). The readiness check runs on a
 * thread of its own (kx_bootstrap_probe every third of metadata.max.age.ms,
 * 200 ms to 5 s), so a cluster that does not answer never holds the
 * endpoint's event loop.
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
