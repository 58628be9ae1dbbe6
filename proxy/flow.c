#include "flow.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <event2/buffer.h>

#include "log.h"
#include "metrics.h"

/* Read sizes: the first, and the largest a run of filled reads grows to.
 * A little under a power of two, so libevent's chunk is that power. */
#define KX_READ_MIN (16u * 1024 - 256)
#define KX_READ_MAX (256u * 1024 - 256)
#ifndef KX_PIPE_SIZE
#define KX_PIPE_SIZE (256u * 1024)
#endif
/* After a pipe came out smaller than KX_SPLICE_MIN, a flow reads for this
 * long before it asks for a pipe again. */
#define KX_PIPE_RETRY_MS 1000
/* A held frame's part shorter than this is copied rather than referenced:
 * a reference costs a buffer chain (and keeps the whole held frame alive)
 * for a few hundred bytes, so a client that reads nothing would hold
 * several times the watermark in small answers. */
#define KX_REF_MIN 2048u
/* Pieces written per writev. */
#define KX_WRITE_IOV 64

/* ---- the raw-socket transport ------------------------------------------ */

static ssize_t kx_raw_readv(struct kx_transport *t, const struct iovec *iov, int cnt)
{
	return readv(t->fd, iov, cnt);
}

static ssize_t kx_raw_writev(struct kx_transport *t, const struct iovec *iov, int cnt)
{
	/* sendmsg, not writev: MSG_NOSIGNAL, a peer gone is an error, not SIGPIPE. */
	struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)cnt};
	return sendmsg(t->fd, &m, MSG_NOSIGNAL);
}

static bool kx_raw_can_splice(const struct kx_transport *t)
{
	(void)t;
	return true;
}

static bool kx_raw_pending(const struct kx_transport *t)
{
	(void)t;
	return false;
}

static int kx_raw_shutdown(struct kx_transport *t, int how)
{
	return shutdown(t->fd, how);
}

static void kx_raw_close(struct kx_transport *t)
{
	if (t->fd >= 0)
		evutil_closesocket(t->fd);
	t->fd = -1;
}

const struct kx_transport_ops kx_raw_transport = {
    .name = "tcp",
    .readv = kx_raw_readv,
    .writev = kx_raw_writev,
    .can_splice = kx_raw_can_splice,
    .pending = kx_raw_pending,
    .shutdown = kx_raw_shutdown,
    .close = kx_raw_close,
};

/* ---- the flow ---------------------------------------------------------- */

/* A block some of buf's bytes lie in (the flow's list holds a reference). */
struct kx_blk {
	struct kx_hold *h;
	size_t cap;
};

static int64_t kx_flow_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool kx_flow_init(struct kx_flow *f, bool can_splice)
{
	f->ref_min = KX_REF_MIN;
	f->buf = evbuffer_new();
	f->out = evbuffer_new();
	f->readsz = KX_READ_MIN;
	f->can_splice = can_splice;
	f->pipe[0] = f->pipe[1] = -1;
	return f->buf && f->out;
}

static void kx_flow_pipe_close(struct kx_flow *f)
{
	for (int i = 0; i < 2; i++)
		if (f->pipe[i] >= 0)
			close(f->pipe[i]);
	f->pipe[0] = f->pipe[1] = -1;
	f->pipesz = 0;
	f->pipe_stuck = false;
}

void kx_flow_free(struct kx_flow *f)
{
	if (f->buf)
		evbuffer_free(f->buf);
	if (f->out)
		evbuffer_free(f->out);
	f->buf = f->out = NULL;
	kx_flow_pipe_close(f);
	if (f->hold)
		kx_hold_put(f->hold);
	f->hold = NULL;
	for (size_t i = 0; i < f->inbuf_cnt; i++)
		kx_hold_put(f->inbuf[f->inbuf_head + i].h);
	free(f->inbuf);
	f->inbuf = NULL;
	f->inbuf_head = f->inbuf_cnt = f->inbuf_cap = 0;
	if (f->blk)
		kx_hold_put(f->blk);
	f->blk = NULL;
}

size_t kx_flow_ready(const struct kx_flow *f)
{
	size_t have = evbuffer_get_length(f->buf);
	return f->piped + evbuffer_get_length(f->out) + (f->pass < have ? (size_t)f->pass : have);
}

bool kx_flow_cut(const struct kx_flow *f)
{
	return f->pass > evbuffer_get_length(f->buf);
}

/*
 * Makes f's pipe, KX_PIPE_SIZE large. A pipe smaller than KX_SPLICE_MIN is
 * not used: past the user's pipe quota (fs.pipe-user-pages-soft, about 256
 * pipes of 256 KiB for a user without CAP_SYS_RESOURCE) Linux makes 8 KiB
 * pipes and refuses to grow them, and splicing through those costs more
 * system calls than reading. Then the flow reads for KX_PIPE_RETRY_MS.
 */
static bool kx_flow_pipe_open(struct kx_flow *f)
{
	static atomic_bool short_logged;
	if (f->pipe_retry_ms) {
		if (kx_flow_now_ms() < f->pipe_retry_ms)
			return false;
		f->pipe_retry_ms = 0;
	}
	if (pipe2(f->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
		kx_debug("no pipe for splice (%s): reading instead", strerror(errno));
		f->pipe[0] = f->pipe[1] = -1;
		f->pipe_retry_ms = kx_flow_now_ms() + KX_PIPE_RETRY_MS;
		return false;
	}
	int sz = fcntl(f->pipe[1], F_SETPIPE_SZ, (int)KX_PIPE_SIZE);
	int set_err = sz <= 0 ? errno : 0;
	if (sz <= 0)
		sz = fcntl(f->pipe[1], F_GETPIPE_SZ);
	if (sz < (int)KX_SPLICE_MIN) {
		if (!atomic_exchange(&short_logged, true))
			kx_warn("splice: pipes of %d bytes only (F_SETPIPE_SZ to %u: %s; fs.pipe-user-pages-soft "
			        "reached?): large frames are read instead while pipes are short (logged once)",
			        sz, KX_PIPE_SIZE, set_err ? strerror(set_err) : "smaller");
		kx_flow_pipe_close(f);
		f->pipe_retry_ms = kx_flow_now_ms() + KX_PIPE_RETRY_MS;
		return false;
	}
	f->pipesz = (uint32_t)sz;
	return true;
}

/*
 * Whether the next bytes from the source are the rest of a cut-through
 * frame large enough to splice, with nothing of the flow buffered ahead of
 * them (the pipe is written first, so nothing may wait in out or buf). Makes
 * the pipe for such a frame; without one (out of descriptors, or only a
 * short pipe), bytes are read.
 */
static bool kx_flow_splices(struct kx_flow *f)
{
	if (!f->can_splice || f->pass < KX_SPLICE_MIN || evbuffer_get_length(f->buf) ||
	    evbuffer_get_length(f->out))
		return false;
	if (f->pipe[0] >= 0)
		return true;
	return kx_flow_pipe_open(f);
}

/* Splices the next part of the frame from src into the pipe; returns as kx_flow_read. */
static ssize_t kx_flow_splice_in(struct kx_flow *f, struct kx_transport *src)
{
	size_t room = f->pipesz - f->piped, want = f->pass < room ? (size_t)f->pass : room;
	if (!want)
		return -2;
	ssize_t r = splice(src->fd, NULL, f->pipe[1], NULL, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && f->piped) {
		/* The pipe may be full by its slots (one per segment spliced: 64
		 * small segments fill it far below its size), or the socket is
		 * empty: either way the source is not read until the pipe drains,
		 * else its readable event fires again at once, for ever. */
		f->pipe_stuck = true;
		return -2;
	}
	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -2 : -1;
	f->piped += (uint32_t)r;
	f->pass -= (uint64_t)r; /* those bytes went ahead of buf: the pipe */
	KX_METRIC_ADD(bytes_spliced, (size_t)r);
	return r;
}

static ssize_t kx_flow_read_block(struct kx_flow *f, struct kx_transport *src);

/* The next read's size after a read of r bytes: doubles while reads fill it, halves when they use little of it. */
static void kx_flow_resize_reads(struct kx_flow *f, size_t r)
{
	if (r >= f->readsz && f->readsz < KX_READ_MAX)
		f->readsz = (f->readsz + 256) * 2 - 256;
	else if (r < f->readsz / 8 && f->readsz > KX_READ_MIN)
		f->readsz = (f->readsz + 256) / 2 - 256;
}

ssize_t kx_flow_read(struct kx_flow *f, struct kx_transport *src)
{
	if (f->blocks)
		return kx_flow_read_block(f, src);
	if (f->hold && f->hold_have < f->hold_len) {
		/* The rest of a held frame, straight into it (never past its end). */
		struct iovec v = {f->hold->data + f->hold_have, f->hold_len - f->hold_have};
		ssize_t r = src->ops->readv(src, &v, 1);
		if (r < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -2 : -1;
		f->hold_have += (size_t)r;
		return r;
	}
	if (src->ops->can_splice(src) && kx_flow_splices(f))
		return kx_flow_splice_in(f, src);
	struct evbuffer_iovec v[2];
	int n = evbuffer_reserve_space(f->buf, f->readsz, v, 2);
	if (n <= 0) {
		errno = ENOMEM;
		return -1;
	}
	ssize_t r = src->ops->readv(src, (struct iovec *)v, n);
	if (r <= 0) {
		evbuffer_commit_space(f->buf, v, 0);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return -2;
		return r;
	}
	size_t left = (size_t)r;
	int used = 0;
	while (used < n && left) {
		if (v[used].iov_len > left)
			v[used].iov_len = left;
		left -= v[used].iov_len;
		used++;
	}
	evbuffer_commit_space(f->buf, v, used);
	kx_flow_resize_reads(f, (size_t)r);
	return r;
}

/* Writes up to `want` bytes from b's front to dst, in one writev of at
 * most KX_WRITE_IOV pieces (*offered: how many bytes those held); drains
 * what went. Returns the bytes written, or -1 (errno). */
static ssize_t kx_flow_writev(struct evbuffer *b, size_t want, struct kx_transport *dst, size_t *offered)
{
	struct evbuffer_iovec v[KX_WRITE_IOV];
	int n = evbuffer_peek(b, (ev_ssize_t)want, NULL, v, KX_WRITE_IOV);
	if (n > KX_WRITE_IOV)
		n = KX_WRITE_IOV;
	size_t total = 0;
	for (int i = 0; i < n; i++) {
		if (total + v[i].iov_len > want)
			v[i].iov_len = want - total;
		total += v[i].iov_len;
	}
	*offered = total;
	ssize_t r = dst->ops->writev(dst, (struct iovec *)v, n);
	if (r > 0)
		evbuffer_drain(b, (size_t)r);
	return r;
}

bool kx_flow_write(struct kx_flow *f, struct kx_transport *dst)
{
	while (f->piped) {
		ssize_t n = splice(f->pipe[0], NULL, dst->fd, NULL, f->piped, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
		f->piped -= (uint32_t)n;
		f->pipe_stuck = false; /* slots are free again */
	}
	/* An empty pipe between frames goes back: a flow holds a pipe only
	 * while it splices (the pipe quota is per user, not per session). */
	if (f->pipe[0] >= 0 && !kx_flow_cut(f))
		kx_flow_pipe_close(f);
	for (;;) {
		size_t outlen = evbuffer_get_length(f->out), have = evbuffer_get_length(f->buf);
		size_t want = outlen ? outlen : (f->pass < have ? (size_t)f->pass : have);
		if (!want)
			return true;
		size_t offered;
		ssize_t n = kx_flow_writev(outlen ? f->out : f->buf, want, dst, &offered);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
		if (!outlen)
			f->pass -= (uint64_t)n;
		if ((size_t)n < offered)
			return true; /* dst took what it could: wait for it */
	}
}

/* ---- held frames -------------------------------------------------------- */

void kx_hold_put(struct kx_hold *h)
{
	if (--h->refs == 0)
		free(h);
}

struct kx_hold *kx_hold_new(size_t len)
{
	struct kx_hold *h = malloc(sizeof(*h) + len);
	if (h)
		h->refs = 1;
	return h;
}

static void kx_hold_unref(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	kx_hold_put(arg);
}

struct kx_hold *kx_flow_take(struct kx_flow *f, size_t len)
{
	KX_BUG_ON(f->pass + len > evbuffer_get_length(f->buf)); /* whole, behind what was cleared */
	struct kx_hold *h = malloc(sizeof(*h) + len);
	if (!h)
		return NULL;
	h->refs = 1;
	if (f->pass) {
		/* Whole chunks are relinked; a chunk split at the frame is copied
		 * (counted here as if all of it were, an upper bound). */
		KX_METRIC_ADD(bytes_copied, (size_t)f->pass);
		evbuffer_remove_buffer(f->buf, f->out, (size_t)f->pass);
		f->pass = 0;
	}
	evbuffer_remove(f->buf, h->data, len);
	KX_METRIC_ADD(bytes_copied, len);
	return h;
}

bool kx_flow_hold(struct kx_flow *f, size_t len)
{
	size_t have = evbuffer_get_length(f->buf);
	KX_BUG_ON(f->hold || f->pass > have || f->pass + len <= have); /* only the start of it is buffered */
	struct kx_hold *h = malloc(sizeof(*h) + len);
	if (!h)
		return false;
	h->refs = 1;
	if (f->pass) {
		KX_METRIC_ADD(bytes_copied, (size_t)f->pass); /* as in kx_flow_take: an upper bound */
		evbuffer_remove_buffer(f->buf, f->out, (size_t)f->pass);
		f->pass = 0;
	}
	size_t part = evbuffer_get_length(f->buf);
	evbuffer_remove(f->buf, h->data, part);
	KX_METRIC_ADD(bytes_copied, part);
	f->hold = h;
	f->hold_len = len;
	f->hold_have = part;
	return true;
}

struct kx_hold *kx_flow_held(struct kx_flow *f, size_t *len)
{
	if (!f->hold || f->hold_have < f->hold_len)
		return NULL;
	struct kx_hold *h = f->hold;
	*len = f->hold_len;
	f->hold = NULL;
	f->hold_len = f->hold_have = 0;
	return h;
}

void kx_flow_put_copy(struct kx_flow *f, const void *data, size_t len)
{
	evbuffer_add(f->out, data, len);
	KX_METRIC_ADD(bytes_copied, len);
}

void kx_flow_put_ref(struct kx_flow *f, struct kx_hold *h, const uint8_t *data, size_t len)
{
	if (len < f->ref_min) {
		kx_flow_put_copy(f, data, len);
		return;
	}
	h->refs++;
	evbuffer_add_reference(f->out, data, len, kx_hold_unref, h);
}

/* ---- reading in blocks, frames taken by reference ------------------------ */

static bool kx_blk_has(const struct kx_blk *b, const void *p, size_t len)
{
	const uint8_t *q = p;
	return q >= b->h->data && q + len <= b->h->data + b->cap;
}

void kx_flow_read_in_blocks(struct kx_flow *f)
{
	KX_BUG_ON(evbuffer_get_length(f->buf) || f->hold || f->pass);
	f->blocks = true;
}

/* Notes that buf's newest bytes lie in f's read block (once per block, in order). */
static bool kx_flow_note_block(struct kx_flow *f)
{
	if (f->inbuf_cnt && f->inbuf[f->inbuf_head + f->inbuf_cnt - 1].h == f->blk)
		return true;
	if (f->inbuf_head + f->inbuf_cnt == f->inbuf_cap) {
		if (f->inbuf_head) { /* slide the live entries to the front */
			memmove(f->inbuf, f->inbuf + f->inbuf_head, f->inbuf_cnt * sizeof(*f->inbuf));
			f->inbuf_head = 0;
		} else {
			size_t cap = f->inbuf_cap ? 2 * f->inbuf_cap : 8;
			struct kx_blk *n = realloc(f->inbuf, cap * sizeof(*n));
			if (!n)
				return false;
			f->inbuf = n;
			f->inbuf_cap = cap;
		}
	}
	f->inbuf[f->inbuf_head + f->inbuf_cnt++] = (struct kx_blk){f->blk, f->blk_cap};
	f->blk->refs++;
	return true;
}

/* Forgets the blocks at the front of the list that no byte of buf lies in any more. */
static void kx_flow_drop_blocks(struct kx_flow *f)
{
	struct evbuffer_iovec v;
	bool any = evbuffer_peek(f->buf, 1, NULL, &v, 1) > 0 && v.iov_len > 0;
	while (f->inbuf_cnt && !(any && kx_blk_has(&f->inbuf[f->inbuf_head], v.iov_base, v.iov_len))) {
		kx_hold_put(f->inbuf[f->inbuf_head].h);
		f->inbuf_head++;
		f->inbuf_cnt--;
	}
	if (!f->inbuf_cnt)
		f->inbuf_head = 0;
}

/* Every this many reads, a flow reading in blocks checks how many pieces buf holds. */
#define KX_COMPACT_EVERY 64

/* The largest block made for one frame's rest (kx_flow_want): a peer that
 * announces a large frame and trickles it holds no more than this at once. */
#define KX_WANT_MAX (8u << 20)

/*
 * Each read adds a piece to buf (a reference can not be grown), so a client
 * that sends a frame a few bytes per read would make as many pieces, each a
 * buffer chain of its own: memory many times the frame's. But buf's bytes in
 * one block are one run (reads fill a block in order, and buf holds the
 * newest bytes), so when buf holds many more pieces than blocks, it is made
 * again with one piece per block: nothing copied, the pieces bounded.
 */
static void kx_flow_compact(struct kx_flow *f)
{
	f->adds = 0;
	int n = evbuffer_peek(f->buf, -1, NULL, NULL, 0);
	if (n <= (int)f->inbuf_cnt + KX_COMPACT_EVERY / 2)
		return;
	struct evbuffer_iovec *v = malloc((size_t)n * sizeof(*v));
	struct evbuffer *nb = v ? evbuffer_new() : NULL;
	if (!nb) {
		free(v);
		return; /* it stays as it is */
	}
	evbuffer_peek(f->buf, -1, NULL, v, n);
	size_t j = 0;
	const uint8_t *run = NULL;
	size_t run_len = 0;
	struct kx_hold *run_h = NULL;
	bool ok = true;
	for (int i = 0; i <= n && ok; i++) {
		if (i < n) {
			while (j < f->inbuf_cnt && !kx_blk_has(&f->inbuf[f->inbuf_head + j], v[i].iov_base, v[i].iov_len))
				j++;
			KX_BUG_ON(j == f->inbuf_cnt);
			if (run_h == f->inbuf[f->inbuf_head + j].h && run + run_len == v[i].iov_base) {
				run_len += v[i].iov_len;
				continue;
			}
		}
		if (run_h) {
			run_h->refs++;
			if (evbuffer_add_reference(nb, run, run_len, kx_hold_unref, run_h) < 0) {
				run_h->refs--;
				ok = false;
			}
		}
		if (i < n) {
			run_h = f->inbuf[f->inbuf_head + j].h;
			run = v[i].iov_base;
			run_len = v[i].iov_len;
		}
	}
	free(v);
	if (!ok) {
		evbuffer_free(nb); /* drops the references it took */
		return;
	}
	evbuffer_free(f->buf); /* drops the old pieces' references: nb holds the blocks now */
	f->buf = nb;
}

/*
 * One read into the free end of f's block. A block only f still references
 * (nothing of it in buf or in a frame) is read into from its start again; one
 * with less than half a read's size left is let go (the bytes in it live on
 * while referenced) for a new one of the read size.
 */
static ssize_t kx_flow_read_block(struct kx_flow *f, struct kx_transport *src)
{
	if (f->blk && f->blk->refs == 1)
		f->blk_used = 0;
	size_t size = f->readsz;
	if (f->want > size) /* a large frame on its way: room for the rest of it (kx_flow_want) */
		size = f->want < KX_WANT_MAX ? f->want : KX_WANT_MAX;
	if (!f->blk || f->blk_cap - f->blk_used < size / 2) {
		struct kx_hold *b = kx_hold_new(size);
		if (!b) {
			errno = ENOMEM;
			return -1;
		}
		if (f->blk)
			kx_hold_put(f->blk);
		f->blk = b;
		f->blk_cap = size;
		f->blk_used = 0;
	}
	uint8_t *at = f->blk->data + f->blk_used;
	struct iovec v = {at, f->blk_cap - f->blk_used};
	ssize_t r = src->ops->readv(src, &v, 1);
	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -2 : -1;
	if (r == 0)
		return 0;
	if (!kx_flow_note_block(f)) {
		errno = ENOMEM;
		return -1;
	}
	f->blk->refs++; /* buf's reference: dropped when those bytes are drained */
	if (evbuffer_add_reference(f->buf, at, (size_t)r, kx_hold_unref, f->blk) < 0) {
		f->blk->refs--;
		errno = ENOMEM;
		return -1;
	}
	f->blk_used += (size_t)r;
	kx_flow_resize_reads(f, (size_t)r);
	if (++f->adds >= KX_COMPACT_EVERY)
		kx_flow_compact(f);
	return r;
}

void kx_flow_drain(struct kx_flow *f, size_t len)
{
	KX_BUG_ON(f->pass || len > evbuffer_get_length(f->buf));
	evbuffer_drain(f->buf, len);
	if (f->blocks)
		kx_flow_drop_blocks(f);
}

void kx_flow_trim(struct kx_flow *f)
{
	if (f->blk && !evbuffer_get_length(f->buf)) {
		kx_hold_put(f->blk);
		f->blk = NULL;
		f->blk_cap = f->blk_used = 0;
	}
}

/* Room for this many contiguous copies (kx_frame_flat) in a frame's holds. */
#define KX_FRAME_FLAT_MAX 2

bool kx_flow_take_frame(struct kx_flow *f, size_t len, struct kx_frame *fr)
{
	KX_BUG_ON(!f->blocks || f->pass || !len || len > evbuffer_get_length(f->buf));
	*fr = (struct kx_frame){0};
	int n = evbuffer_peek(f->buf, (ev_ssize_t)len, NULL, NULL, 0);
	KX_BUG_ON(n <= 0);
	size_t slots = (size_t)n + KX_FRAME_FLAT_MAX;
	void *mem = malloc((size_t)n * sizeof(struct iovec) + slots * (sizeof(struct kx_hold *) + sizeof(size_t)));
	if (!mem)
		return false;
	fr->iov = mem;
	fr->holds = (struct kx_hold **)(fr->iov + n);
	fr->lens = (size_t *)(fr->holds + slots);
	fr->holds_cap = (int)slots;
	/* struct evbuffer_iovec is laid out as struct iovec (libevent says so). */
	evbuffer_peek(f->buf, (ev_ssize_t)len, NULL, (struct evbuffer_iovec *)fr->iov, n);
	size_t total = 0;
	for (int i = 0; i < n; i++) {
		if (total + fr->iov[i].iov_len > len)
			fr->iov[i].iov_len = len - total;
		total += fr->iov[i].iov_len;
	}
	KX_BUG_ON(total != len);
	fr->niov = n;
	fr->len = len;
	/* Each piece lies in one block, and pieces come in the blocks' order. */
	size_t j = 0;
	for (int i = 0; i < n; i++) {
		while (j < f->inbuf_cnt && !kx_blk_has(&f->inbuf[f->inbuf_head + j], fr->iov[i].iov_base, fr->iov[i].iov_len))
			j++;
		KX_BUG_ON(j == f->inbuf_cnt); /* a byte of buf in no block of the flow's */
		const struct kx_blk *b = &f->inbuf[f->inbuf_head + j];
		if (fr->nholds && fr->holds[fr->nholds - 1] == b->h)
			continue;
		b->h->refs++;
		fr->holds[fr->nholds] = b->h;
		fr->lens[fr->nholds++] = b->cap;
	}
	evbuffer_drain(f->buf, len);
	kx_flow_drop_blocks(f);
	return true;
}

void kx_frame_release(struct kx_frame *fr)
{
	for (int i = 0; i < fr->nholds; i++)
		kx_hold_put(fr->holds[i]);
	free(fr->iov); /* the one allocation: iov, holds, lens */
	*fr = (struct kx_frame){0};
}

bool kx_frame_flat(struct kx_frame *fr, size_t from, size_t to, const uint8_t **p)
{
	KX_BUG_ON(from > to || to > fr->len);
	size_t off = 0;
	int i = 0;
	while (i < fr->niov && off + fr->iov[i].iov_len <= from) /* the piece `from` is in */
		off += fr->iov[i++].iov_len;
	if (from == to || (i < fr->niov && to <= off + fr->iov[i].iov_len)) {
		*p = i < fr->niov ? (const uint8_t *)fr->iov[i].iov_base + (from - off) : NULL;
		return true;
	}
	if (fr->nholds == fr->holds_cap)
		return false;
	struct kx_hold *h = kx_hold_new(to - from);
	if (!h)
		return false;
	for (size_t at = from, k = (size_t)i; at < to; k++) {
		size_t skip = at - off, m = fr->iov[k].iov_len - skip;
		if (m > to - at)
			m = to - at;
		memcpy(h->data + (at - from), (const uint8_t *)fr->iov[k].iov_base + skip, m);
		at += m;
		off += fr->iov[k].iov_len;
	}
	KX_METRIC_ADD(bytes_copied, to - from);
	fr->holds[fr->nholds] = h;
	fr->lens[fr->nholds++] = to - from;
	*p = h->data;
	return true;
}

bool kx_frame_unpin(struct kx_frame *fr, size_t ratio)
{
	size_t pinned = 0;
	for (int i = 0; i < fr->nholds; i++)
		pinned += fr->lens[i];
	if (!fr->len || pinned <= fr->len * ratio)
		return true;
	/* One allocation, as kx_flow_take_frame makes: iov, holds, lens. */
	size_t slots = 1 + KX_FRAME_FLAT_MAX;
	void *mem = malloc(sizeof(struct iovec) + slots * (sizeof(struct kx_hold *) + sizeof(size_t)));
	struct kx_hold *h = kx_hold_new(fr->len);
	if (!mem || !h) {
		free(mem);
		if (h)
			kx_hold_put(h);
		return false;
	}
	size_t at = 0;
	for (int i = 0; i < fr->niov; i++) {
		memcpy(h->data + at, fr->iov[i].iov_base, fr->iov[i].iov_len);
		at += fr->iov[i].iov_len;
	}
	KX_METRIC_ADD(bytes_copied, fr->len);
	size_t len = fr->len;
	kx_frame_release(fr);
	fr->iov = mem;
	fr->holds = (struct kx_hold **)(fr->iov + 1);
	fr->lens = (size_t *)(fr->holds + slots);
	fr->holds_cap = (int)slots;
	fr->iov[0] = (struct iovec){h->data, len};
	fr->niov = 1;
	fr->len = len;
	fr->holds[0] = h;
	fr->lens[0] = len;
	fr->nholds = 1;
	return true;
}

int kx_frame_iov_from(const struct kx_frame *fr, size_t from, struct iovec *out)
{
	int n = 0;
	size_t off = 0;
	for (int i = 0; i < fr->niov; i++) {
		size_t len = fr->iov[i].iov_len;
		if (off + len > from) {
			size_t skip = from > off ? from - off : 0;
			out[n++] = (struct iovec){(uint8_t *)fr->iov[i].iov_base + skip, len - skip};
		}
		off += len;
	}
	return n;
}
