/*
 * conn: socket helpers and frame queueing shared by mapped and regional
 * connections (conn.h).
 */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "header.h"

struct timeval kx_ms_timeval(int ms)
{
	return (struct timeval){ms / 1000, (ms % 1000) * 1000};
}


void kx_sock_close(struct kx_sock *k)
{
	if (k->rev)
		event_free(k->rev);
	if (k->wev)
		event_free(k->wev);
	if (k->tr.ops)
		k->tr.ops->close(&k->tr);
	else if (k->fd >= 0)
		evutil_closesocket(k->fd);
	*k = (struct kx_sock){.fd = -1};
}

/* Opens k on fd in base; its events call back with arg (the session for
 * the client's socket, the upstream object for the upstream's). */
bool kx_sock_open(struct event_base *base, struct kx_sock *k, evutil_socket_t fd, event_callback_fn on_read,
                         event_callback_fn on_write, void *arg)
{
	int one = 1;
	/* Frames are written whole as they are ready: do not hold them back. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	k->fd = fd;
	kx_transport_raw(&k->tr, fd);
	k->rev = event_new(base, fd, EV_READ | EV_PERSIST, on_read, arg);
	k->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, on_write, arg);
	return k->rev && k->wev;
}

bool kx_sock_connect(struct event_base *base, struct kx_sock *k, const struct evutil_addrinfo *a, int connect_ms,
                     event_callback_fn on_read, event_callback_fn on_write, void *arg, const char **why)
{
	evutil_socket_t fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*why = strerror(errno);
		return false;
	}
	if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
		*why = strerror(errno);
		evutil_closesocket(fd);
		return false;
	}
	if (!kx_sock_open(base, k, fd, on_read, on_write, arg)) {
		kx_sock_close(k);
		*why = "out of memory";
		return false;
	}
	struct timeval t = kx_ms_timeval(connect_ms);
	kx_sock_want(k->wev, &k->writing, true, &t); /* writable: connected or failed */
	return true;
}

void kx_sock_want(struct event *ev, bool *now, bool on, const struct timeval *tv)
{
	if (!ev || on == *now)
		return;
	if (on)
		event_add(ev, tv);
	else
		event_del(ev);
	*now = on;
}

/*
 * A socket being read whose transport holds bytes it already took from the
 * kernel (TLS: decrypted records left after a read that filled its buffer)
 * is read again now: the socket itself may have nothing more to say, so its
 * event would not come (a session paused at max.inflight.requests with the
 * client's last requests inside TLS waited for ever).
 */
void kx_sock_read_pending(struct kx_sock *k)
{
	if (k->reading && k->tr.ops && k->tr.ops->pending(&k->tr))
		event_active(k->rev, EV_READ, 0);
}


/* Whether a socket with `more` to write waits for writability: not while
 * its TLS write waits to read, and always while its TLS read waits to write. */
bool kx_sock_wants_write(const struct kx_sock *k, bool more)
{
	return (more && !(k->tr.blocked & KX_TR_WRITE_WANTS_READ)) || (k->tr.blocked & KX_TR_READ_WANTS_WRITE);
}


/* An event already waited for keeps its deadline: the limit bounds the whole
 * handshake, not each step of a peer trickling it. */
enum kx_tls_step kx_sock_handshake_step(struct kx_sock *k, const struct timeval *limit)
{
	enum kx_tls_step st = kx_tls_handshake(&k->tr);
	kx_sock_want(k->rev, &k->reading, st == KX_TLS_WANT_READ, limit);
	kx_sock_want(k->wev, &k->writing, st == KX_TLS_WANT_WRITE, limit);
	return st;
}


int64_t kx_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


void kx_format_addr(const struct sockaddr *sa, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(out, len, "%s:%d", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(out, len, "[%s]:%d", host, port);
	} else {
		snprintf(out, len, "?");
	}
}


/* The hold among holds[0..n) whose frame contains [p, p + len), or NULL.
 * *hint: where the last one was found (segments mostly follow each other
 * in one block), tried first. */
static struct kx_hold *kx_hold_of(struct kx_hold *const *holds, const size_t *lens, size_t n, const uint8_t *p,
                                  size_t len, size_t *hint)
{
	for (size_t k = 0; k < n; k++) {
		size_t i = (*hint + k) % n;
		const uint8_t *b = holds[i] ? holds[i]->data : NULL;
		if (b && p >= b && p + len <= b + lens[i]) {
			*hint = i;
			return holds[i];
		}
	}
	return NULL;
}

void kx_queue_frame_refs(struct kx_flow *f, struct kp_writer *w, struct kx_hold *const *holds, const size_t *lens,
                         size_t n)
{
	kp_writer_finish(w);
	uint8_t size_be[4];
	kp_frame_size_put(size_be, kp_writer_size(w));
	kx_flow_put_copy(f, size_be, 4);
	size_t hint = 0;
	for (size_t i = 0; i < w->nsegs; i++) {
		const struct kp_segment *seg = &w->segs[i];
		struct kx_hold *h = seg->ref ? kx_hold_of(holds, lens, n, seg->ref, seg->len, &hint) : NULL;
		if (h)
			kx_flow_put_ref(f, h, seg->ref, seg->len);
		else
			kx_flow_put_copy(f, seg->ref ? seg->ref : w->buf + seg->off, seg->len);
	}
}

void kx_queue_frame(struct kx_flow *f, struct kp_writer *w, struct kx_hold *h, size_t len)
{
	kx_queue_frame_refs(f, w, &h, &len, 1);
	kx_hold_put(h);
}

void kx_frame_write_ref(struct kp_writer *w, const struct kx_frame *fr, size_t from)
{
	size_t off = 0;
	for (int i = 0; i < fr->niov; i++) {
		size_t len = fr->iov[i].iov_len;
		if (off + len > from) {
			size_t skip = from > off ? from - off : 0;
			kp_write_ref(w, (const uint8_t *)fr->iov[i].iov_base + skip, len - skip);
		}
		off += len;
	}
}
