/*
 * upgrade: handing the listening sockets to a new process (upgrade.h).
 * The control connection is an AF_UNIX SOCK_SEQPACKET one: every message
 * arrives whole, and a descriptor travels with the message naming it.
 */
#include "upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/listener.h>

#include "log.h"

#define KX_UPGRADE_MSG_MAX  64
#define KX_UPGRADE_IO_MS    2000   /* one message each way, within this */
#define KX_UPGRADE_READY_MS 120000 /* the successor's bootstrap and start, within this */
#define KX_UPGRADE_FDS_MAX  65536

struct kx_sock {
	evutil_socket_t fd;
	enum kx_listen_kind kind;
	uint16_t port;
};

struct kx_socks {
	struct kx_sock *v;
	size_t cnt, cap;
};

static pthread_mutex_t kx_socks_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kx_socks kx_listening; /* this process's */
static struct kx_socks kx_inherited; /* handed over, not adopted yet */
static int kx_predecessor = -1;      /* the old process's control connection, until READY */

static bool kx_socks_add(struct kx_socks *s, evutil_socket_t fd, enum kx_listen_kind kind, uint16_t port)
{
	if (s->cnt == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct kx_sock *v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return false;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->cnt++] = (struct kx_sock){fd, kind, port};
	return true;
}

void kx_listen_register(evutil_socket_t fd, enum kx_listen_kind kind, uint16_t port)
{
	pthread_mutex_lock(&kx_socks_lock);
	if (!kx_socks_add(&kx_listening, fd, kind, port))
		kx_warn("upgrade: out of memory noting listener port %u: a successor will bind it anew", port);
	pthread_mutex_unlock(&kx_socks_lock);
}

void kx_listen_unregister(evutil_socket_t fd)
{
	pthread_mutex_lock(&kx_socks_lock);
	for (size_t i = 0; i < kx_listening.cnt; i++)
		if (kx_listening.v[i].fd == fd) {
			kx_listening.v[i] = kx_listening.v[--kx_listening.cnt];
			break;
		}
	pthread_mutex_unlock(&kx_socks_lock);
}

static const char *kx_kind_name(enum kx_listen_kind k)
{
	return k == KX_LISTEN_ADMIN ? "admin" : "kafka";
}

/* ---- messages ------------------------------------------------------------------ */

static void kx_io_timeout(int fd, int ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Sends text (and fd, when >= 0) as one message. */
static bool kx_msg_send(int sock, const char *text, int fd)
{
	struct iovec iov = {.iov_base = (void *)text, .iov_len = strlen(text)};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		m.msg_control = ctl.buf;
		m.msg_controllen = sizeof(ctl.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	ssize_t n;
	do
		n = sendmsg(sock, &m, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)iov.iov_len;
}

/* One message into text (NUL-terminated) and the descriptor it carried (-1: none). False on EOF, error or timeout. */
static bool kx_msg_recv(int sock, char *text, size_t cap, int *fd)
{
	struct iovec iov = {.iov_base = text, .iov_len = cap - 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} ctl;
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf)};
	ssize_t n;
	do
		n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	*fd = -1;
	for (struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&m) : NULL; c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int got;
			memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*fd < 0)
				*fd = got;
			else
				close(got); /* one per message: the rest is not ours to keep */
		}
	}
	if (n <= 0 || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return false;
	}
	text[n] = '\0';
	return true;
}

/* Whether msg is prefix and then a decimal number (all of the rest), in *n. */
static bool kx_msg_number(const char *msg, const char *prefix, unsigned long *n)
{
	size_t p = strlen(prefix);
	if (strncmp(msg, prefix, p) != 0 || msg[p] < '0' || msg[p] > '9')
		return false;
	char *end;
	errno = 0;
	*n = strtoul(msg + p, &end, 10);
	return errno == 0 && *end == '\0';
}

/* ---- the new process ------------------------------------------------------------- */

bool kx_upgrade_take(const char *path, size_t *took, char *why, size_t whylen)
{
	*took = 0;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, whylen, "upgrade.socket %s: longer than a unix socket path can be", path);
		return false;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (sock < 0) {
		snprintf(why, whylen, "upgrade.socket: socket: %s", strerror(errno));
		return false;
	}
	if (connect(sock, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		close(sock);
		if (e == ENOENT || e == ECONNREFUSED)
			return true; /* no running kstretch there: a first start */
		snprintf(why, whylen, "upgrade.socket %s: connect: %s", path, strerror(e));
		return false;
	}
	kx_io_timeout(sock, KX_UPGRADE_IO_MS);
	char msg[KX_UPGRADE_MSG_MAX];
	int fd = -1;
	unsigned long n = 0;
	if (!kx_msg_send(sock, "TAKE 1", -1) || !kx_msg_recv(sock, msg, sizeof(msg), &fd) || fd >= 0 ||
	    !kx_msg_number(msg, "FDS ", &n) || n > KX_UPGRADE_FDS_MAX) {
		if (fd >= 0)
			close(fd);
		snprintf(why, whylen, "upgrade.socket %s: the running process did not offer its sockets", path);
		close(sock);
		return false;
	}
	struct kx_socks got = {0};
	bool ok = true;
	for (unsigned long i = 0; ok && i < n; i++) {
		unsigned long port = 0;
		bool admin = false;
		ok = kx_msg_recv(sock, msg, sizeof(msg), &fd) && fd >= 0 &&
		     ((admin = kx_msg_number(msg, "admin ", &port)) || kx_msg_number(msg, "kafka ", &port)) && port > 0 &&
		     port <= 65535 && kx_socks_add(&got, fd, admin ? KX_LISTEN_ADMIN : KX_LISTEN_KAFKA, (uint16_t)port);
		if (!ok && fd >= 0)
			close(fd);
	}
	if (!ok) {
		for (size_t i = 0; i < got.cnt; i++)
			close(got.v[i].fd);
		free(got.v);
		snprintf(why, whylen, "upgrade.socket %s: the handover broke off after %zu of %lu sockets", path,
		         got.cnt, n);
		close(sock);
		return false;
	}
	pthread_mutex_lock(&kx_socks_lock);
	free(kx_inherited.v);
	kx_inherited = got;
	pthread_mutex_unlock(&kx_socks_lock);
	kx_predecessor = sock;
	*took = got.cnt;
	return true;
}

evutil_socket_t kx_inherited_take(enum kx_listen_kind kind, uint16_t port)
{
	evutil_socket_t fd = -1;
	pthread_mutex_lock(&kx_socks_lock);
	for (size_t i = 0; i < kx_inherited.cnt; i++)
		if (kx_inherited.v[i].kind == kind && kx_inherited.v[i].port == port) {
			fd = kx_inherited.v[i].fd;
			kx_inherited.v[i] = kx_inherited.v[--kx_inherited.cnt];
			break;
		}
	pthread_mutex_unlock(&kx_socks_lock);
	if (fd >= 0)
		evutil_make_socket_nonblocking(fd);
	return fd;
}

size_t kx_inherited_close_rest(void)
{
	pthread_mutex_lock(&kx_socks_lock);
	size_t n = kx_inherited.cnt;
	for (size_t i = 0; i < n; i++) {
		kx_info("upgrade: closing the handed-over %s listener on port %u: this configuration does not serve it",
		        kx_kind_name(kx_inherited.v[i].kind), kx_inherited.v[i].port);
		close(kx_inherited.v[i].fd);
	}
	kx_inherited.cnt = 0;
	pthread_mutex_unlock(&kx_socks_lock);
	return n;
}

void kx_upgrade_ready(void)
{
	if (kx_predecessor < 0)
		return;
	if (!kx_msg_send(kx_predecessor, "READY", -1))
		kx_warn("upgrade: could not tell the previous process to let go (%s); it serves on until stopped",
		        strerror(errno));
	close(kx_predecessor);
	kx_predecessor = -1;
}

/* ---- the running process ----------------------------------------------------------- */

struct kx_upgrade {
	struct evconnlistener *lev;
	struct event *wait; /* the successor's READY */
	int peer;
	void (*handed)(void *);
	void *arg;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static void kx_upgrade_drop_peer(struct kx_upgrade *u)
{
	if (u->wait) {
		event_free(u->wait);
		u->wait = NULL;
	}
	if (u->peer >= 0) {
		close(u->peer);
		u->peer = -1;
	}
}

static void kx_upgrade_on_ready(evutil_socket_t fd, short what, void *arg)
{
	struct kx_upgrade *u = arg;
	char msg[KX_UPGRADE_MSG_MAX];
	int got = -1;
	bool ready =
	    (what & EV_READ) && kx_msg_recv((int)fd, msg, sizeof(msg), &got) && got < 0 && !strcmp(msg, "READY");
	if (got >= 0)
		close(got);
	kx_upgrade_drop_peer(u);
	if (!ready) {
		kx_warn("upgrade: the new process %s before it was ready; this one serves on",
		        (what & EV_TIMEOUT) ? "took too long" : "went away or answered out of turn");
		return;
	}
	kx_info("upgrade: the new process serves on every listener; closing ours and draining");
	u->handed(u->arg);
}

/* Sends every listening socket; false when the successor stopped reading. */
static bool kx_upgrade_offer(int peer, size_t *sent)
{
	char msg[KX_UPGRADE_MSG_MAX];
	bool ok = true;
	pthread_mutex_lock(&kx_socks_lock);
	snprintf(msg, sizeof(msg), "FDS %zu", kx_listening.cnt);
	ok = kx_msg_send(peer, msg, -1);
	for (size_t i = 0; ok && i < kx_listening.cnt; i++) {
		snprintf(msg, sizeof(msg), "%s %u", kx_kind_name(kx_listening.v[i].kind), kx_listening.v[i].port);
		ok = kx_msg_send(peer, msg, kx_listening.v[i].fd);
		*sent += ok;
	}
	pthread_mutex_unlock(&kx_socks_lock);
	return ok;
}

static void kx_upgrade_on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
                                 void *arg)
{
	struct kx_upgrade *u = arg;
	(void)lev;
	(void)sa;
	(void)salen;
	if (u->peer >= 0) {
		kx_warn("upgrade: a second process asks for the listeners while one takes them over; refused");
		close(fd);
		return;
	}
	/* Blocking, briefly: one message each way within KX_UPGRADE_IO_MS. */
	int flags = fcntl(fd, F_GETFL);
	if (flags >= 0)
		fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	kx_io_timeout(fd, KX_UPGRADE_IO_MS);
	char msg[KX_UPGRADE_MSG_MAX];
	int got = -1;
	if (!kx_msg_recv(fd, msg, sizeof(msg), &got) || got >= 0 || strcmp(msg, "TAKE 1") != 0) {
		if (got >= 0)
			close(got);
		kx_warn("upgrade: a connection to %s did not ask for the listeners (\"TAKE 1\"); closed", u->path);
		close(fd);
		return;
	}
	size_t sent = 0;
	if (!kx_upgrade_offer(fd, &sent)) {
		kx_warn("upgrade: handing the listeners over broke off after %zu (%s); this process serves on", sent,
		        strerror(errno));
		close(fd);
		return;
	}
	kx_info("upgrade: %zu listening sockets handed to a new process; serving until it is ready", sent);
	u->peer = fd;
	struct timeval tv = {.tv_sec = KX_UPGRADE_READY_MS / 1000};
	u->wait = event_new(evconnlistener_get_base(u->lev), fd, EV_READ, kx_upgrade_on_ready, u);
	if (!u->wait || event_add(u->wait, &tv) != 0) {
		kx_warn("upgrade: cannot wait for the new process (out of memory); this process serves on");
		kx_upgrade_drop_peer(u);
	}
}

struct kx_upgrade *kx_upgrade_listen(struct event_base *base, const char *path, void (*handed)(void *), void *arg,
                                     char *why, size_t whylen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct kx_upgrade *u = calloc(1, sizeof(*u));
	if (!u) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	u->peer = -1;
	u->handed = handed;
	u->arg = arg;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, whylen, "%s: longer than a unix socket path can be", path);
		free(u);
		return NULL;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	memcpy(u->path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct stat st;
	if (fd >= 0 && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path); /* a stale one, or the previous process's (it keeps its own descriptor) */
	mode_t old = umask(0177);
	bool bound = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	umask(old);
	if (!bound || listen(fd, 4) != 0 ||
	    !(u->lev = evconnlistener_new(base, kx_upgrade_on_accept, u, LEV_OPT_CLOSE_ON_FREE, 0, fd))) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(u);
		return NULL;
	}
	return u;
}

void kx_upgrade_free(struct kx_upgrade *u)
{
	if (!u)
		return;
	kx_upgrade_drop_peer(u);
	evconnlistener_free(u->lev);
	free(u);
}
