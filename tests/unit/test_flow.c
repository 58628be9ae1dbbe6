/*
 * The flow layer over socketpairs: bytes read from one end, cleared, written
 * to another, in order; cut-through past what has arrived; large runs spliced
 * (never in user space); held frames taken out and queued back by reference;
 * a transport that cannot splice keeps the bytes in user space.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "flow.h"
#include "metrics.h"

static int in[2], out[2]; /* in[0]: the source's far end, in[1]: the flow's source; out[0]: its destination */
static struct kx_transport src, dst;

static void nonblock(int fd)
{
	cr_assert_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

static void pairs(void)
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, in), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, out), 0);
	int big = 4 << 20;
	for (int i = 0; i < 2; i++) {
		setsockopt(in[i], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
		setsockopt(out[i], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
		setsockopt(out[i], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	}
	nonblock(in[1]);
	nonblock(out[0]);
	nonblock(out[1]);
	kx_transport_raw(&src, in[1]);
	kx_transport_raw(&dst, out[0]);
}

static void unpair(void)
{
	for (int i = 0; i < 2; i++) {
		close(in[i]);
		close(out[i]);
	}
}

TestSuite(flow, .init = pairs, .fini = unpair);

static void send_all(const void *p, size_t n)
{
	cr_assert_eq(write(in[0], p, n), (ssize_t)n);
}

/* Everything the destination received, up to cap bytes, without waiting. */
static size_t received(uint8_t *buf, size_t cap)
{
	size_t got = 0;
	for (;;) {
		ssize_t r = read(out[1], buf + got, cap - got);
		if (r <= 0)
			return got;
		got += (size_t)r;
	}
}

/* Reads from the source until `want` more bytes arrived into f (or nothing is there). */
static void pump_in(struct kx_flow *f, size_t want)
{
	size_t got = 0;
	for (int i = 0; i < 10000 && got < want; i++) {
		ssize_t r = kx_flow_read(f, &src);
		if (r == -2)
			break;
		cr_assert_gt(r, 0, "read: %zd (%s)", r, strerror(errno));
		got += (size_t)r;
	}
}

Test(flow, cleared_bytes_go_in_order_and_the_rest_waits)
{
	struct kx_flow f = {0};
	cr_assert(kx_flow_init(&f, true));
	send_all("aaaabbbbcccc", 12);
	pump_in(&f, 12);
	cr_assert_eq(evbuffer_get_length(f.buf), 12);
	f.pass = 8; /* the first two "frames" are cleared */
	cr_assert_eq(kx_flow_ready(&f), 8);
	cr_assert(kx_flow_write(&f, &dst));
	uint8_t got[64];
	cr_assert_eq(received(got, sizeof(got)), 8);
	cr_assert_arr_eq(got, "aaaabbbb", 8);
	cr_assert_eq(f.pass, 0);
	cr_assert_eq(evbuffer_get_length(f.buf), 4, "the uncleared bytes stay");
	kx_flow_free(&f);
}

Test(flow, a_frame_cleared_past_what_arrived_is_cut_through_as_it_comes)
{
	struct kx_flow f = {0};
	cr_assert(kx_flow_init(&f, true));
	send_all("0123456789", 10);
	pump_in(&f, 10);
	f.pass = 30; /* a 30-byte frame, 10 bytes of it here */
	cr_assert(kx_flow_cut(&f));
	cr_assert(kx_flow_write(&f, &dst));
	send_all("abcdefghijklmnopqrst", 20);
	pump_in(&f, 20);
	cr_assert(kx_flow_write(&f, &dst));
	cr_assert_not(kx_flow_cut(&f));
	uint8_t got[64];
	cr_assert_eq(received(got, sizeof(got)), 30);
	cr_assert_arr_eq(got, "0123456789abcdefghijklmnopqrst", 30);
	kx_flow_free(&f);
}

static uint8_t big[1 << 20];

Test(flow, the_rest_of_a_large_cleared_run_is_spliced_never_read_into_user_space)
{
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + 3);
	struct kx_flow f = {0};
	cr_assert(kx_flow_init(&f, true));
	uint64_t spliced0 = KX_METRIC_VALUE(bytes_spliced);
	f.pass = sizeof(big); /* cleared at its header, none of it here yet */
	static uint8_t got[sizeof(big)];
	size_t sent = 0, have = 0;
	for (int round = 0; round < 100000 && have < sizeof(big); round++) {
		if (sent < sizeof(big)) {
			ssize_t w = write(in[0], big + sent, sizeof(big) - sent < 65536 ? sizeof(big) - sent : 65536);
			if (w > 0)
				sent += (size_t)w;
		}
		ssize_t r = kx_flow_read(&f, &src);
		cr_assert(r > 0 || r == -2, "read %zd: %s", r, strerror(errno));
		cr_assert_eq(evbuffer_get_length(f.buf), 0, "a spliced byte reached the buffer");
		cr_assert(kx_flow_write(&f, &dst));
		have += received(got + have, sizeof(got) - have);
		if (f.pass < KX_SPLICE_MIN)
			break; /* the tail is read: too short to splice */
	}
	uint64_t spliced = KX_METRIC_VALUE(bytes_spliced) - spliced0;
	cr_assert_geq(spliced, sizeof(big) - KX_SPLICE_MIN, "spliced %llu", (unsigned long long)spliced);
	/* The tail, read the ordinary way. */
	if (sent < sizeof(big))
		send_all(big + sent, sizeof(big) - sent);
	for (int round = 0; round < 10000 && have < sizeof(big); round++) {
		(void)kx_flow_read(&f, &src);
		cr_assert(kx_flow_write(&f, &dst));
		have += received(got + have, sizeof(got) - have);
	}
	cr_assert_eq(have, sizeof(big));
	cr_assert_arr_eq(got, big, sizeof(big));
	cr_assert_eq(f.pipe[0], -1, "the pipe is given back after the frame");
	kx_flow_free(&f);
}

/* A transport like a raw socket that cannot splice (TLS will be one). */
static bool no_splice(const struct kx_transport *t)
{
	(void)t;
	return false;
}

Test(flow, a_transport_that_cannot_splice_gets_its_bytes_through_user_space)
{
	struct kx_transport_ops ops = kx_raw_transport;
	ops.can_splice = no_splice;
	src.ops = &ops;
	struct kx_flow f = {0};
	cr_assert(kx_flow_init(&f, true));
	uint64_t spliced0 = KX_METRIC_VALUE(bytes_spliced);
	f.pass = 200000;
	static uint8_t data[200000], got[200000];
	memset(data, 'x', sizeof(data));
	send_all(data, sizeof(data));
	size_t have = 0;
	for (int round = 0; round < 10000 && have < sizeof(data); round++) {
		(void)kx_flow_read(&f, &src);
		cr_assert(kx_flow_write(&f, &dst));
		have += received(got + have, sizeof(got) - have);
	}
	cr_assert_eq(have, sizeof(data));
	cr_assert_eq(KX_METRIC_VALUE(bytes_spliced), spliced0);
	kx_flow_free(&f);
}

Test(flow, a_held_frame_goes_out_after_what_was_cleared_before_it)
{
	struct kx_flow f = {0};
	cr_assert(kx_flow_init(&f, true));
	static uint8_t frame[5000];
	memset(frame, 'F', sizeof(frame));
	send_all("head", 4);
	send_all(frame, sizeof(frame));
	send_all("tail", 4);
	pump_in(&f, 4 + sizeof(frame) + 4);
	f.pass = 4; /* "head" cleared; the frame behind it is to be rewritten */
	uint64_t copied0 = KX_METRIC_VALUE(bytes_copied);
	struct kx_hold *h = kx_flow_take(&f, sizeof(frame));
	cr_assert_not_null(h);
	cr_assert_eq(f.pass, 0);
	kx_flow_put_copy(&f, "NEW", 3);                  /* a rewritten part */
	kx_flow_put_ref(&f, h, h->data + 100, 4000);     /* an unchanged long part: by reference */
	kx_flow_put_ref(&f, h, h->data + 4100, 10);      /* a short one: copied */
	kx_hold_put(h);                                  /* out's references keep it */
	f.pass = 4;                                      /* "tail" cleared */
	cr_assert(kx_flow_write(&f, &dst));
	static uint8_t got[8192];
	size_t n = received(got, sizeof(got));
	cr_assert_eq(n, 4 + 3 + 4000 + 10 + 4);
	cr_assert_arr_eq(got, "headNEW", 7);
	cr_assert_eq(got[7], 'F');
	cr_assert_arr_eq(got + n - 4, "tail", 4);
	/* Copied: "head" (relinked, counted as an upper bound), the frame taken
	 * out, "NEW" and the short part; the 4000 referenced bytes are not. */
	uint64_t copied = KX_METRIC_VALUE(bytes_copied) - copied0;
	cr_assert_eq(copied, 4 + sizeof(frame) + 3 + 10, "copied %llu", (unsigned long long)copied);
	kx_flow_free(&f);
}

Test(flow, a_write_to_a_closed_peer_is_an_error_not_a_signal)
{
	struct kx_flow f = {0};
	cr_assert(kx_flow_init(&f, true));
	send_all("abcd", 4);
	pump_in(&f, 4);
	f.pass = 4;
	close(out[1]);
	out[1] = open("/dev/null", O_RDONLY); /* unpair closes something */
	cr_assert_not(kx_flow_write(&f, &dst));
	cr_assert(errno == EPIPE || errno == ECONNRESET, "errno %d", errno);
	kx_flow_free(&f);
}

Test(flow, a_frame_held_as_it_arrives_is_read_straight_into_its_block_not_copied)
{
	struct kx_flow f = {0};
	cr_assert(kx_flow_init(&f, true));
	static uint8_t frame[300000], got[400000];
	for (size_t i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 13 + 1);
	send_all("cleared", 7);
	send_all(frame, 1000); /* the start of the frame to hold */
	pump_in(&f, 1007);
	f.pass = 7;
	uint64_t copied0 = KX_METRIC_VALUE(bytes_copied);
	cr_assert(kx_flow_hold(&f, sizeof(frame)));
	cr_assert(kx_flow_holding(&f));
	size_t len = 0;
	cr_assert_null(kx_flow_held(&f, &len), "not all of it is there");
	size_t sent = 1000;
	struct kx_hold *h = NULL;
	for (int round = 0; round < 100000 && !h; round++) {
		if (sent < sizeof(frame)) {
			ssize_t w = write(in[0], frame + sent, sizeof(frame) - sent < 65536 ? sizeof(frame) - sent : 65536);
			if (w > 0)
				sent += (size_t)w;
		}
		ssize_t r = kx_flow_read(&f, &src);
		cr_assert(r > 0 || r == -2);
		cr_assert_eq(evbuffer_get_length(f.buf), 0, "a held byte went through the buffer");
		h = kx_flow_held(&f, &len);
	}
	cr_assert_not_null(h);
	cr_assert_eq(len, sizeof(frame));
	cr_assert_arr_eq(h->data, frame, sizeof(frame));
	/* Copied: the 7 cleared bytes (relinked, counted as an upper bound) and
	 * the 1,000 that had arrived before the hold; the rest went straight in. */
	cr_assert_eq(KX_METRIC_VALUE(bytes_copied) - copied0, 7 + 1000);
	kx_flow_put_ref(&f, h, h->data, len);
	kx_hold_put(h);
	send_all("next", 4); /* what follows the held frame goes to the buffer again */
	pump_in(&f, 4);
	f.pass = 4;
	size_t have = 0;
	for (int round = 0; round < 10000 && have < 7 + sizeof(frame) + 4; round++) {
		cr_assert(kx_flow_write(&f, &dst));
		have += received(got + have, sizeof(got) - have);
	}
	cr_assert_eq(have, 7 + sizeof(frame) + 4);
	cr_assert_arr_eq(got, "cleared", 7);
	cr_assert_arr_eq(got + 7, frame, sizeof(frame));
	cr_assert_arr_eq(got + 7 + sizeof(frame), "next", 4);
	kx_flow_free(&f);
}

Test(flow, a_flow_freed_while_holding_frees_the_hold)
{
	struct kx_flow f = {0};
	cr_assert(kx_flow_init(&f, true));
	send_all("abc", 3);
	pump_in(&f, 3);
	cr_assert(kx_flow_hold(&f, 1 << 20));
	kx_flow_free(&f); /* under ASan/valgrind: no leak */
	cr_assert_not(kx_flow_holding(&f));
}

/* ---- reading in blocks: frames taken by reference ------------------------- */

/* Writes what o has ready to the destination and returns all of it (up to cap). */
static size_t drain_out(struct kx_flow *o, uint8_t *got, size_t cap)
{
	size_t have = 0;
	for (int round = 0; round < 10000 && kx_flow_ready(o); round++) {
		cr_assert(kx_flow_write(o, &dst));
		have += received(got + have, cap - have);
	}
	return have + received(got + have, cap - have);
}

/* Queues every byte of fr on o by reference, piece by piece, and lets fr go. */
static void put_frame_refs(struct kx_flow *o, struct kx_frame *fr)
{
	for (int i = 0; i < fr->niov; i++) {
		struct kx_hold *h = NULL;
		for (int k = 0; k < fr->nholds && !h; k++)
			if ((uint8_t *)fr->iov[i].iov_base >= fr->holds[k]->data &&
			    (uint8_t *)fr->iov[i].iov_base + fr->iov[i].iov_len <= fr->holds[k]->data + fr->lens[k])
				h = fr->holds[k];
		cr_assert_not_null(h, "piece %d lies in none of the frame's blocks", i);
		kx_flow_put_ref(o, h, fr->iov[i].iov_base, fr->iov[i].iov_len);
	}
	kx_frame_release(fr);
}

Test(flow, a_small_frame_read_in_blocks_is_taken_and_sent_by_reference_never_copied)
{
	struct kx_flow f = {0}, o = {0};
	cr_assert(kx_flow_init(&f, false));
	cr_assert(kx_flow_init(&o, false));
	kx_flow_read_in_blocks(&f);
	o.ref_min = 0; /* as the pool's request flows: every part by reference */
	static uint8_t a[3000], b[100], got[8192];
	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = (uint8_t)(i * 7 + 3);
	memset(b, 'b', sizeof(b));
	uint64_t copied0 = KX_METRIC_VALUE(bytes_copied);
	send_all(a, 1000); /* frame a in two reads, then the start of b in the second */
	pump_in(&f, 1000);
	send_all(a + 1000, sizeof(a) - 1000);
	send_all(b, 40);
	pump_in(&f, sizeof(a) - 1000 + 40);
	cr_assert_eq(evbuffer_get_length(f.buf), sizeof(a) + 40);
	struct kx_frame fr;
	cr_assert(kx_flow_take_frame(&f, sizeof(a), &fr));
	cr_assert_eq(fr.len, sizeof(a));
	cr_assert_eq(fr.niov, 2, "one piece per read");
	cr_assert_eq(fr.nholds, 1, "both reads went into one block");
	cr_assert_eq(evbuffer_get_length(f.buf), 40, "b's start stays");
	/* Contiguous where one read holds the range: no copy; across the two reads: a copy, counted. */
	const uint8_t *p;
	cr_assert(kx_frame_flat(&fr, 10, 900, &p));
	cr_assert_arr_eq(p, a + 10, 890);
	cr_assert_eq(KX_METRIC_VALUE(bytes_copied) - copied0, 0);
	cr_assert(kx_frame_flat(&fr, 990, 1010, &p));
	cr_assert_arr_eq(p, a + 990, 20);
	cr_assert_eq(KX_METRIC_VALUE(bytes_copied) - copied0, 20);
	cr_assert_eq(fr.nholds, 2, "the copy is held with the frame");
	put_frame_refs(&o, &fr);
	size_t n = drain_out(&o, got, sizeof(got));
	cr_assert_eq(n, sizeof(a));
	cr_assert_arr_eq(got, a, sizeof(a));
	cr_assert_eq(KX_METRIC_VALUE(bytes_copied) - copied0, 20, "only the flattened 20 bytes were copied");
	send_all(b + 40, sizeof(b) - 40);
	pump_in(&f, sizeof(b) - 40);
	cr_assert(kx_flow_take_frame(&f, sizeof(b), &fr));
	cr_assert_eq(evbuffer_get_length(f.buf), 0);
	kx_flow_trim(&f); /* nothing buffered: the flow lets its block go; the frame keeps it */
	cr_assert_null(f.blk);
	put_frame_refs(&o, &fr);
	n = drain_out(&o, got, sizeof(got));
	cr_assert_eq(n, sizeof(b));
	cr_assert_arr_eq(got, b, sizeof(b));
	cr_assert_eq(KX_METRIC_VALUE(bytes_copied) - copied0, 20);
	kx_flow_free(&f);
	kx_flow_free(&o); /* under ASan: every block freed */
}

Test(flow, a_large_frame_read_in_blocks_spans_several_and_is_never_copied)
{
	struct kx_flow f = {0}, o = {0};
	cr_assert(kx_flow_init(&f, false));
	cr_assert(kx_flow_init(&o, false));
	kx_flow_read_in_blocks(&f);
	o.ref_min = 0;
	static uint8_t frame[700000], got[800000];
	for (size_t i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 13 + 1);
	uint64_t copied0 = KX_METRIC_VALUE(bytes_copied);
	size_t sent = 0, have = 0;
	for (int round = 0; round < 100000 && have < sizeof(frame); round++) {
		if (sent < sizeof(frame)) {
			size_t m = sizeof(frame) - sent < 50000 ? sizeof(frame) - sent : 50000;
			ssize_t w = write(in[0], frame + sent, m);
			if (w > 0)
				sent += (size_t)w;
		}
		ssize_t r = kx_flow_read(&f, &src);
		cr_assert(r > 0 || r == -2);
		if (r > 0)
			have += (size_t)r;
	}
	cr_assert_eq(have, sizeof(frame));
	struct kx_frame fr;
	cr_assert(kx_flow_take_frame(&f, sizeof(frame), &fr));
	cr_assert_gt(fr.nholds, 1, "a frame larger than a read's size spans blocks");
	cr_assert_eq(evbuffer_get_length(f.buf), 0);
	cr_assert_eq(f.inbuf_cnt, 0, "the flow forgot the blocks taken");
	put_frame_refs(&o, &fr);
	size_t n = drain_out(&o, got, sizeof(got));
	cr_assert_eq(n, sizeof(frame));
	cr_assert_arr_eq(got, frame, sizeof(frame));
	cr_assert_eq(KX_METRIC_VALUE(bytes_copied) - copied0, 0);
	kx_flow_free(&f);
	kx_flow_free(&o);
}

Test(flow, a_small_frame_that_would_pin_a_large_block_is_copied_out_and_a_large_one_is_not)
{
	struct kx_flow f = {0}, o = {0};
	cr_assert(kx_flow_init(&f, false));
	cr_assert(kx_flow_init(&o, false));
	kx_flow_read_in_blocks(&f);
	o.ref_min = 0;
	static uint8_t a[200], b[60000], got[70000];
	memset(a, 'a', sizeof(a));
	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = (uint8_t)(i * 11 + 5);
	/* Grow the read size so that one block holds both frames. */
	for (int i = 0; i < 6; i++) {
		static uint8_t fill[40000];
		send_all(fill, sizeof(fill));
		pump_in(&f, sizeof(fill));
		struct kx_frame w;
		cr_assert(kx_flow_take_frame(&f, sizeof(fill), &w));
		kx_frame_release(&w);
	}
	send_all(a, sizeof(a));
	send_all(b, sizeof(b));
	pump_in(&f, sizeof(a) + sizeof(b));
	struct kx_frame fa, fb;
	cr_assert(kx_flow_take_frame(&f, sizeof(a), &fa));
	cr_assert(kx_flow_take_frame(&f, sizeof(b), &fb));
	size_t pinned = 0;
	for (int i = 0; i < fa.nholds; i++)
		pinned += fa.lens[i];
	cr_assert_gt(pinned, 8 * sizeof(a), "the small frame lies in a block of %zu bytes", pinned);
	uint64_t copied0 = KX_METRIC_VALUE(bytes_copied);
	struct kx_hold *shared = fa.holds[0];
	cr_assert(kx_frame_unpin(&fa, 8));
	cr_assert_eq(KX_METRIC_VALUE(bytes_copied) - copied0, sizeof(a), "the small frame copied out");
	cr_assert_eq(fa.nholds, 1);
	cr_assert_eq(fa.lens[0], sizeof(a), "it now keeps a block of its own size");
	cr_assert_neq(fa.holds[0], shared);
	cr_assert(kx_frame_unpin(&fb, 8));
	cr_assert_eq(KX_METRIC_VALUE(bytes_copied) - copied0, sizeof(a), "the large frame stays where it was read");
	const uint8_t *p;
	cr_assert(kx_frame_flat(&fa, 4, 8, &p), "room for a flat copy after the unpin");
	put_frame_refs(&o, &fa);
	put_frame_refs(&o, &fb);
	size_t n = drain_out(&o, got, sizeof(got));
	cr_assert_eq(n, sizeof(a) + sizeof(b));
	cr_assert_arr_eq(got, a, sizeof(a));
	cr_assert_arr_eq(got + sizeof(a), b, sizeof(b));
	kx_flow_free(&f);
	kx_flow_free(&o);
}

Test(flow, a_large_frame_whose_size_the_owner_told_lands_in_one_block_of_its_size)
{
	struct kx_flow f = {0};
	cr_assert(kx_flow_init(&f, false));
	kx_flow_read_in_blocks(&f);
	static uint8_t frame[700000];
	for (size_t i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 7 + 2);
	send_all(frame, 4096); /* the start: the owner learns the frame's size from it */
	pump_in(&f, 4096);
	kx_flow_want(&f, sizeof(frame) - 4096);
	size_t sent = 4096, have = 4096;
	for (int round = 0; round < 100000 && have < sizeof(frame); round++) {
		if (sent < sizeof(frame)) {
			size_t m = sizeof(frame) - sent < 50000 ? sizeof(frame) - sent : 50000;
			ssize_t w = write(in[0], frame + sent, m);
			if (w > 0)
				sent += (size_t)w;
		}
		ssize_t r = kx_flow_read(&f, &src);
		cr_assert(r > 0 || r == -2);
		if (r > 0)
			have += (size_t)r;
		kx_flow_want(&f, sizeof(frame) - have); /* as the pool does after each read */
	}
	cr_assert_eq(have, sizeof(frame));
	struct kx_frame fr;
	cr_assert(kx_flow_take_frame(&f, sizeof(frame), &fr));
	cr_assert_eq(fr.nholds, 2, "the start's block and one for the rest (without the hint: one per read size): %d",
	             fr.nholds);
	cr_assert_geq(fr.lens[1], sizeof(frame) - 4096);
	const uint8_t *p;
	cr_assert(kx_frame_flat(&fr, 4096, sizeof(frame), &p), "the rest lies in one piece: no copy");
	cr_assert_arr_eq(p, frame + 4096, sizeof(frame) - 4096);
	kx_frame_release(&fr);
	kx_flow_free(&f);
}

Test(flow, a_flow_freed_with_frames_half_read_in_blocks_frees_them)
{
	struct kx_flow f = {0};
	cr_assert(kx_flow_init(&f, false));
	kx_flow_read_in_blocks(&f);
	send_all("0123456789", 10);
	pump_in(&f, 10);
	struct kx_frame fr;
	cr_assert(kx_flow_take_frame(&f, 4, &fr));
	kx_flow_free(&f); /* the rest in buf, the block: freed; the frame keeps its block */
	const uint8_t *p;
	cr_assert(kx_frame_flat(&fr, 0, 4, &p));
	cr_assert_arr_eq(p, "0123", 4);
	kx_frame_release(&fr); /* under ASan: no leak, no use after free */
}

Test(flow, a_frame_sent_a_byte_per_read_is_kept_in_few_pieces_and_never_copied)
{
	struct kx_flow f = {0}, o = {0};
	cr_assert(kx_flow_init(&f, false));
	cr_assert(kx_flow_init(&o, false));
	kx_flow_read_in_blocks(&f);
	o.ref_min = 0;
	static uint8_t frame[3000], got[4096];
	for (size_t i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 31 + 5);
	uint64_t copied0 = KX_METRIC_VALUE(bytes_copied);
	for (size_t i = 0; i < sizeof(frame); i++) {
		send_all(frame + i, 1);
		pump_in(&f, 1);
	}
	cr_assert_eq(evbuffer_get_length(f.buf), sizeof(frame));
	int pieces = evbuffer_peek(f.buf, -1, NULL, NULL, 0);
	cr_assert_leq(pieces, 100, "%d pieces for %zu one-byte reads", pieces, sizeof(frame));
	struct kx_frame fr;
	cr_assert(kx_flow_take_frame(&f, sizeof(frame), &fr));
	put_frame_refs(&o, &fr);
	cr_assert_eq(drain_out(&o, got, sizeof(got)), sizeof(frame));
	cr_assert_arr_eq(got, frame, sizeof(frame));
	cr_assert_eq(KX_METRIC_VALUE(bytes_copied) - copied0, 0);
	kx_flow_free(&f);
	kx_flow_free(&o);
}
