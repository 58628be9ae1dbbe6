/*
 * conn: what mapped sessions (session.c) and regional sessions and their
 * shared upstreams (regional.c, pool.c) do alike with a socket: open it with
 * its two persistent events, want or stop wanting readiness, close it; and
 * queue a frame a kp_writer made on a flow, its unchanged parts by reference
 * to the held frames they lie in.
 *
 *   kp_writer segments ─► kx_queue_frame_refs ─► flow.out: size (owned), owned bytes copied,
 *                                                referenced bytes by reference to the hold
 *                                                that contains them (else copied)
 */
#ifndef KX_CONN_H
#define KX_CONN_H

#include <event2/event.h>
#include <event2/util.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "flow.h"
#include "tls.h"
#include "writer.h"

/* A non-blocking socket and its two events (both persistent). */
struct kx_sock {
	evutil_socket_t fd;     /* -1: none */
	struct kx_transport tr; /* how its flows read and write it */
	struct event *rev, *wev;
	bool reading, writing; /* whether rev / wev are added */
};

struct timeval kx_ms_timeval(int ms);

/* A monotonic clock, in ms. */
int64_t kx_now_ms(void);

/* "host:port" or "[v6]:port" of a socket address ("?" for another family). */
void kx_format_addr(const struct sockaddr *sa, char *out, size_t len);

void kx_sock_close(struct kx_sock *k);

/* Opens k on fd in base (a raw transport, TCP_NODELAY); its events call back with arg. */
bool kx_sock_open(struct event_base *base, struct kx_sock *k, evutil_socket_t fd, event_callback_fn on_read,
                  event_callback_fn on_write, void *arg);

/*
 * Starts a non-blocking connect of k to address a: the socket opened with
 * its events, its write event wanted for connect_ms (writable: connected or
 * failed). False with *why saying why; k is then closed.
 */
bool kx_sock_connect(struct event_base *base, struct kx_sock *k, const struct evutil_addrinfo *a, int connect_ms,
                     event_callback_fn on_read, event_callback_fn on_write, void *arg, const char **why);

/* Adds (with timeout tv) or deletes ev, when that changes *now. */
void kx_sock_want(struct event *ev, bool *now, bool on, const struct timeval *tv);

/* A socket being read whose transport holds bytes already taken from the
 * kernel is made readable now (its event would not come). */
void kx_sock_read_pending(struct kx_sock *k);

/* Whether a socket with `more` to write waits for writability (TLS aware). */
bool kx_sock_wants_write(const struct kx_sock *k, bool more);

/*
 * One step of a TLS handshake on k (mapped sessions, regional sessions and the
 * regional pool alike): on WANT_READ/WANT_WRITE it waits for that readiness
 * only (within limit), once done it waits for nothing (the caller sets the
 * events of the open connection). Returns the step.
 */
enum kx_tls_step kx_sock_handshake_step(struct kx_sock *k, const struct timeval *limit);

/*
 * Queues the frame w wrote on f: its 4-byte size, then the segments (owned
 * bytes copied; referenced ones by reference to whichever of holds[0..n)
 * contains them, copied when none does). Finishes w; the holds stay the
 * caller's.
 */
void kx_queue_frame_refs(struct kx_flow *f, struct kp_writer *w, struct kx_hold *const *holds, const size_t *lens,
                         size_t n);

/* References into w the bytes [from, len) of a frame taken by reference, piece by piece
 * (queued with fr->holds, they go out from where they were read). */
void kx_frame_write_ref(struct kp_writer *w, const struct kx_frame *fr, size_t from);

/* kx_queue_frame_refs with one frame, h's len bytes; then drops the caller's reference to h. */
void kx_queue_frame(struct kx_flow *f, struct kp_writer *w, struct kx_hold *h, size_t len);

#endif
