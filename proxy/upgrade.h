/*
 * upgrade: a new kstretch process takes over a running one's listening
 * sockets, so that a client never finds the port closed (upgrade.socket).
 *
 *   old process                               new process (same config)
 *   listens on upgrade.socket (unix, 0600)
 *                                     <-----  connects: "TAKE 1"
 *   sends every listening socket      ----->  adopts them (SCM_RIGHTS), one
 *   ("kafka PORT" / "admin PORT", one            per worker and port, the
 *   descriptor each), keeps accepting            last worker the rest; binds
 *                                                new ones where none came
 *                                     <-----  "READY" once its workers run
 *   stops accepting, drains as on SIGTERM,    serves, and listens on
 *   exits                                     upgrade.socket itself
 *
 * A listening socket is never closed in between (both processes hold it
 * until the old one lets go), so no connection is refused or reset: the
 * kernel queues every new connection on a socket that someone accepts from.
 * The old process serves on if the new one fails before READY.
 */
#ifndef KX_UPGRADE_H
#define KX_UPGRADE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/util.h>

enum kx_listen_kind {
	KX_LISTEN_KAFKA, /* a client listener (bootstrap or a broker's) */
	KX_LISTEN_ADMIN, /* the admin HTTP port */
};

/* The running process's listening sockets, for a takeover (any thread). */
void kx_listen_register(evutil_socket_t fd, enum kx_listen_kind kind, uint16_t port);
void kx_listen_unregister(evutil_socket_t fd);

/*
 * New process: asks the process listening on path for its sockets. True
 * with *took set to how many it handed over (0 and true when nothing
 * listens there: a first start); false, with why, when one answered and the
 * handover failed (then nothing was adopted, and the old process serves on).
 */
bool kx_upgrade_take(const char *path, size_t *took, char *why, size_t whylen);

/* A socket handed over for (kind, port), now the caller's, or -1 (any thread). */
evutil_socket_t kx_inherited_take(enum kx_listen_kind kind, uint16_t port);

/* Closes the handed-over sockets nobody adopted (ports this process does not serve); how many. */
size_t kx_inherited_close_rest(void);

/* New process, once serving: tells the old one to let go (no-op without a takeover). */
void kx_upgrade_ready(void);

/*
 * Listens on path for a successor (a stale socket file is replaced);
 * handed(arg) runs in base's thread once the successor said READY. NULL,
 * with why, when path cannot be listened on.
 */
struct kx_upgrade;
struct kx_upgrade *kx_upgrade_listen(struct event_base *base, const char *path, void (*handed)(void *), void *arg,
                                     char *why, size_t whylen);
void kx_upgrade_free(struct kx_upgrade *u);

#endif
