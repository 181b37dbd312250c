/*
 * vdeload: a minimal VDE client for load tests of a vde_switch.
 *
 *   vdeload send DIR --mac MAC --dst MAC --size N (--duration S | --count N)
 *                    [--nonblock] [--batch N] [--stream]
 *   vdeload recv DIR --mac MAC [--from MAC] [--announce] [--batch N]
 *                    [--delay-us N] [--expect N] [--stream]
 *   vdeload join DIR --count N [--marks N,N,...]
 *   vdeload echo DIR --mac MAC
 *   vdeload ping DIR --mac MAC --dst MAC --count N [--interval-us N]
 *
 * Every mode does the v3 handshake on DIR/ctl itself (request with the
 * address of our bound datagram socket, 110-byte reply, connect to it),
 * then prints "READY" on stdout.  With --stream, send and recv are QEMU
 * "-netdev stream" clients instead: DIR is the unix stream socket (a
 * switch's --qemu-stream), no handshake, and each frame travels as a
 * 4-byte big-endian length and the frame (send writes 32 per write).
 *
 * send: waits for a line on stdin, then sends frames dst|src|0x88b5|zeros
 *       of N bytes as fast as it can, for S seconds or N frames.  Sends
 *       block when the switch is behind (the socket is back-pressured);
 *       with --nonblock, EAGAIN/ENOBUFS are counted instead.
 * recv: with --announce first sends one broadcast frame from MAC so a
 *       learning switch knows where MAC lives; then counts the frames
 *       (from MAC --from only, when given) until SIGTERM/SIGINT/SIGUSR1,
 *       or until --expect N frames were counted; --delay-us N sleeps that
 *       long after each batch taken (a deliberately slow receiver).
 * join: opens N ports one after another (each handshake waits for the
 *       reply) and keeps them; after the count in --marks (and the last)
 *       prints "MARK n seconds" (seconds: the joins since the previous
 *       mark) and waits for a line on stdin, so the caller can look at the
 *       switch; exits on EOF.
 * echo: sends every frame back to its source (addresses swapped).
 * ping: announces, waits for a line on stdin, then sends one frame at a
 *       time to --dst and waits for it to come back: round-trip times.
 *
 * Results are one line of JSON on stdout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0xfeedface
#define REQ_FIXED 122
#define MAXFRAME 9234
#define MAXBATCH 256

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void die(const char *what)
{
	fprintf(stderr, "vdeload: %s: %s\n", what, strerror(errno));
	exit(2);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse_mac(const char *s, unsigned char mac[6])
{
	unsigned v[6];
	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (unsigned char)v[i];
	return 0;
}

/* A test frame dst|src|0x88b5|zeros of size bytes at f. */
static void put_frame(unsigned char *f, const unsigned char *dst, const unsigned char *src,
		      int size)
{
	memset(f, 0, size);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x88;
	f[13] = 0xb5;
}

/* The same as a stream record: 4-byte big-endian length, then the frame. */
static void put_record(unsigned char *at, const unsigned char *dst, const unsigned char *src,
		       int size)
{
	uint32_t n = (uint32_t)size;
	at[0] = n >> 24;
	at[1] = n >> 16;
	at[2] = n >> 8;
	at[3] = n;
	put_frame(at + 4, dst, src, size);
}

/* write all of buf; 0, or -1 when stopped or broken */
static int write_all(int fd, const unsigned char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR && !stop_flag)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One 60-byte broadcast frame from me, so a learning switch knows where me is. */
static void announce(int fd, const unsigned char *me, int stream)
{
	static const unsigned char bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	unsigned char rec[64];
	int bad;

	if (stream) {
		put_record(rec, bcast, me, 60);
		bad = write_all(fd, rec, sizeof rec) < 0;
	} else {
		put_frame(rec, bcast, me, 60);
		bad = send(fd, rec, 60, 0) < 0;
	}
	if (bad)
		die("send announce");
}

/* A QEMU stream client's connection to the unix stream socket at path. */
static int stream_connect(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	if (snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path) >= (int)sizeof addr.sun_path) {
		errno = ENAMETOOLONG;
		die("socket path");
	}
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	for (int tries = 0; connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0; tries++) {
		if ((errno != ECONNREFUSED && errno != ENOENT) || tries >= 500)
			die("connect");
		usleep(10000);
	}
	return fd;
}

/* Handshake with the switch at dir; returns the connected data socket. */
static int vde_connect(const char *dir, const char *descr, char *ourpath, size_t ourlen)
{
	struct sockaddr_un ctl = { .sun_family = AF_UNIX };
	struct sockaddr_un me = { .sun_family = AF_UNIX };
	struct sockaddr_un reply;
	unsigned char req[REQ_FIXED + 128];
	uint32_t word;
	size_t dlen = strlen(descr);
	int fdctl, fddata, seq;
	ssize_t n;

	if (dlen > 127)
		dlen = 127;
	if (snprintf(ctl.sun_path, sizeof ctl.sun_path, "%s/ctl", dir) >= (int)sizeof ctl.sun_path) {
		errno = ENAMETOOLONG;
		die("switch path");
	}
	fdctl = socket(AF_UNIX, SOCK_STREAM, 0);
	fddata = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (fdctl < 0 || fddata < 0)
		die("socket");
	/* the switch may have bound ctl without listening yet: retry a while */
	for (int tries = 0; connect(fdctl, (struct sockaddr *)&ctl, sizeof ctl) < 0; tries++) {
		if ((errno != ECONNREFUSED && errno != ENOENT) || tries >= 500)
			die("connect ctl");
		usleep(10000);
	}
	for (seq = 0;; seq++) {
		snprintf(me.sun_path, sizeof me.sun_path, "%s/.load%05d-%05d", dir, (int)getpid(), seq);
		if (bind(fddata, (struct sockaddr *)&me, sizeof me) == 0)
			break;
		if (errno != EADDRINUSE || seq > 1000)
			die("bind data socket");
	}
	chmod(me.sun_path, 0700);
	snprintf(ourpath, ourlen, "%s", me.sun_path);

	memset(req, 0, sizeof req);
	word = MAGIC;
	memcpy(req, &word, 4);
	word = 3;
	memcpy(req + 4, &word, 4);
	word = 0;                           /* REQ_NEW_CONTROL, any port */
	memcpy(req + 8, &word, 4);
	memcpy(req + 12, &me, sizeof me);   /* sa_family_t + 108-byte path */
	memcpy(req + REQ_FIXED, descr, dlen);
	if (send(fdctl, req, REQ_FIXED + dlen, 0) != (ssize_t)(REQ_FIXED + dlen))
		die("send request");

	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fdctl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	memset(&reply, 0, sizeof reply);
	n = recv(fdctl, &reply, sizeof reply, 0);
	if (n <= 0) {
		if (n == 0)
			errno = ECONNRESET;
		die("handshake reply");
	}
	if (connect(fddata, (struct sockaddr *)&reply, sizeof reply) < 0)
		die("connect data socket");
	/* fdctl stays open (and silent) for the whole session: it keeps the port */
	return fddata;
}

static double now_us(void)
{
	return now_s() * 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Open count ports one by one; report the time taken between marks. */
static int do_join(const char *dir, long long count, const char *marks)
{
	char path[108], descr[64], line[64];
	const char *m = marks;
	long long next = 0;
	double t0;

	printf("READY\n");
	fflush(stdout);
	if (!fgets(line, sizeof line, stdin))
		return 1;
	next = m && *m ? atoll(m) : count;
	t0 = now_s();
	for (long long i = 1; i <= count; i++) {
		snprintf(descr, sizeof descr, "join %lld", i);
		int fd = vde_connect(dir, descr, path, sizeof path);
		unlink(path);
		(void)fd;                   /* kept open: the port stays ours */
		if (i == next || i == count) {
			printf("MARK %lld %.6f\n", i, now_s() - t0);
			fflush(stdout);
			if (!fgets(line, sizeof line, stdin))
				return 0;
			while (m && *m && *m != ',')
				m++;
			if (m && *m == ',')
				m++;
			next = m && *m ? atoll(m) : count;
			t0 = now_s();
		}
	}
	while (fgets(line, sizeof line, stdin))
		;
	return 0;
}

static int do_echo(int fd, const unsigned char *me)
{
	static unsigned char buf[MAXFRAME];

	announce(fd, me, 0);
	printf("READY\n");
	fflush(stdout);
	while (!stop_flag) {
		ssize_t n = recv(fd, buf, sizeof buf, 0);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("recv");
		}
		if (n < 14 || memcmp(buf, me, 6) != 0)
			continue;
		memcpy(buf, buf + 6, 6);
		memcpy(buf + 6, me, 6);
		send(fd, buf, n, 0);
	}
	return 0;
}

static int do_ping(int fd, const unsigned char *me, const unsigned char *dst, long long count,
		   int interval_us)
{
	static unsigned char buf[MAXFRAME];
	unsigned char f[64];
	char line[64];
	double *rtt = calloc(count > 0 ? count : 1, sizeof *rtt);
	long long got = 0, lost = 0;

	announce(fd, me, 0);
	put_frame(f, dst, me, sizeof f);
	printf("READY\n");
	fflush(stdout);
	if (!fgets(line, sizeof line, stdin))
		return 1;
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	for (long long i = 0; i < count && !stop_flag; i++) {
		uint32_t seq = (uint32_t)i;
		memcpy(f + 14, &seq, 4);
		double t0 = now_us();
		if (send(fd, f, sizeof f, 0) < 0)
			die("send ping");
		for (;;) {
			ssize_t n = recv(fd, buf, sizeof buf, 0);
			if (n < 0 && errno == EINTR && !stop_flag)
				continue;
			/* a reply comes within 200 ms or counts as lost, also while
			 * other frames (a flood) keep arriving */
			if (n < 0 || now_us() - t0 > 200000.0) {
				lost++;
				break;
			}
			if (n >= 18 && memcmp(buf + 14, &seq, 4) == 0 && memcmp(buf + 6, dst, 6) == 0) {
				rtt[got++] = now_us() - t0;
				break;
			}
		}
		if (interval_us > 0)
			usleep(interval_us);
	}
	qsort(rtt, got, sizeof *rtt, cmp_double);
#define PCT(p) (got ? rtt[(long long)((p) * (got - 1) + 0.5)] : 0.0)
	printf("{\"count\": %lld, \"lost\": %lld, \"p50\": %.1f, \"p90\": %.1f, "
	       "\"p99\": %.1f, \"max\": %.1f}\n", got, lost, PCT(0.5), PCT(0.9), PCT(0.99),
	       got ? rtt[got - 1] : 0.0);
	fflush(stdout);
	return 0;
}

static void set_bufsize(int fd, int bytes)
{
	if (bytes > 0) {
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
	}
}

static void usage(void)
{
	fprintf(stderr,
		"usage: vdeload send DIR --mac MAC --dst MAC --size N (--duration S | --count N) [--nonblock] [--batch N] [--rate FRAMES_PER_S] [--stream]\n"
		"       vdeload recv DIR --mac MAC [--from MAC] [--announce] [--batch N] [--delay-us N] [--expect N] [--stream]\n"
		"       vdeload join DIR --count N [--marks N,N,...]\n"
		"       vdeload echo DIR --mac MAC\n"
		"       vdeload ping DIR --mac MAC --dst MAC --count N [--interval-us N]\n");
	exit(2);
}

/* What send and recv were told (see main). */
struct load {
	unsigned char mac[6], dst[6], from[6];
	int have_dst, have_from, announce, nonblock, stream;
	int size, batch, bufsize, delay_us, interval_us;
	double duration, rate;
	long long count, expect;
	const char *marks;
};

/* Frames to send next (at most batch), or 0 once the count or the time is up. */
static int next_burst(const struct load *o, long long sent, double deadline)
{
	if (stop_flag)
		return 0;
	if (o->count > 0)
		return o->count - sent < o->batch ? (int)(o->count - sent) : o->batch;
	return now_s() < deadline ? o->batch : 0;
}

static int do_send(int fd, const struct load *o)
{
	static unsigned char frame[MAXFRAME];
	static unsigned char block[MAXBATCH * (MAXFRAME + 4)];
	struct mmsghdr msgs[MAXBATCH];
	struct iovec iov = { .iov_base = frame, .iov_len = o->size };
	long long sent = 0, eagain = 0, enobufs = 0, errors = 0;
	size_t rec = (size_t)o->size + 4;
	char line[64];
	double t0, deadline;
	int want;

	put_frame(frame, o->dst, o->mac, o->size);
	memset(msgs, 0, sizeof msgs);
	for (int i = 0; i < o->batch; i++) {
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
		if (o->stream)
			put_record(block + i * rec, o->dst, o->mac, o->size);
	}

	printf("READY\n");
	fflush(stdout);
	if (!fgets(line, sizeof line, stdin))
		return 1;

	t0 = now_s();
	deadline = t0 + o->duration;
	while ((want = next_burst(o, sent, deadline)) > 0) {
		if (o->rate > 0) {           /* paced: sent frames at most rate * elapsed */
			double due = t0 + sent / o->rate;
			if (due > now_s()) {
				struct timespec ts = { (time_t)due, (long)((due - (time_t)due) * 1e9) };
				clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
			}
		}
		if (o->stream) {             /* blocking writes: a broken stream ends it */
			if (write_all(fd, block, want * rec) < 0) {
				errors++;
				break;
			}
			sent += want;
			continue;
		}
		int n = sendmmsg(fd, msgs, want, o->nonblock ? MSG_DONTWAIT : 0);
		if (n > 0) {
			sent += n;
			continue;
		}
		if (errno == EAGAIN)
			eagain++;
		else if (errno == ENOBUFS)
			enobufs++;
		else if (errno != EINTR && ++errors > 1000)
			break;
	}
	printf("{\"sent\": %lld, \"elapsed\": %.6f, \"eagain\": %lld, \"enobufs\": %lld, "
	       "\"errors\": %lld, \"size\": %d}\n", sent, now_s() - t0, eagain, enobufs, errors,
	       o->size);
	fflush(stdout);
	return 0;
}

/* What recv has counted. */
static struct {
	long long frames, bytes, other, wakeups;
	double first, last;
} got;

static void count_frame(const unsigned char *f, unsigned len, const unsigned char *from,
			double t)
{
	if (from && (len < 12 || memcmp(f + 6, from, 6) != 0)) {
		got.other++;
		return;
	}
	if (got.frames == 0)
		got.first = t;
	got.last = t;
	got.frames++;
	got.bytes += len;
}

/* Count the whole records in buf[0..have); returns the bytes they took. */
static size_t count_records(const unsigned char *buf, size_t have, const unsigned char *from,
			    double t)
{
	size_t pos = 0;

	while (have - pos >= 4) {
		uint32_t len = (uint32_t)buf[pos] << 24 | (uint32_t)buf[pos + 1] << 16 |
			       (uint32_t)buf[pos + 2] << 8 | buf[pos + 3];
		if (len > MAXFRAME) {
			errno = EPROTO;
			die("record length");
		}
		if (have - pos - 4 < len)
			break;
		count_frame(buf + pos + 4, len, from, t);
		pos += 4 + len;
	}
	return pos;
}

static int do_recv(int fd, const struct load *o)
{
	static unsigned char bufs[MAXBATCH][MAXFRAME];
	static unsigned char stream_buf[1 << 20];
	struct mmsghdr msgs[MAXBATCH];
	struct iovec iovs[MAXBATCH];
	const unsigned char *from = o->have_from ? o->from : NULL;
	size_t have = 0;

	if (o->announce)
		announce(fd, o->mac, o->stream);
	for (int i = 0; i < o->batch; i++) {
		iovs[i].iov_base = bufs[i];
		iovs[i].iov_len = MAXFRAME;
		memset(&msgs[i], 0, sizeof msgs[i]);
		msgs[i].msg_hdr.msg_iov = &iovs[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	/* a periodic timeout lets a stop request get through a quiet socket */
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

	printf("READY\n");
	fflush(stdout);
	while (!stop_flag) {
		int n;
		if (o->stream)
			n = read(fd, stream_buf + have, sizeof stream_buf - have);
		else
			n = recvmmsg(fd, msgs, o->batch, MSG_WAITFORONE, NULL);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("receive");
		}
		if (n == 0 && o->stream)
			break;                  /* the switch closed the stream */
		double t = now_s();
		got.wakeups++;
		if (o->stream) {
			have += (size_t)n;
			size_t used = count_records(stream_buf, have, from, t);
			memmove(stream_buf, stream_buf + used, have - used);
			have -= used;
		}
		for (int i = 0; !o->stream && i < n; i++)
			count_frame(bufs[i], msgs[i].msg_len, from, t);
		if (o->expect > 0 && got.frames >= o->expect)
			break;
		if (o->delay_us > 0)
			usleep(o->delay_us);
	}
	printf("{\"frames\": %lld, \"bytes\": %lld, \"other\": %lld, \"wakeups\": %lld, "
	       "\"window\": %.6f}\n", got.frames, got.bytes, got.other, got.wakeups,
	       got.frames ? got.last - got.first : 0.0);
	fflush(stdout);
	return 0;
}

/* Options: a flag, or a value of one kind; seen is set when given. */
struct option_spec {
	const char *name;
	char kind;                          /* f flag, m MAC, i int, l long long, d double, s string */
	void *at;
	int *seen;
};

static void parse_options(int argc, char **argv, const struct option_spec *specs)
{
	for (int i = 3; i < argc; i++) {
		const struct option_spec *o = specs;
		while (o->name && strcmp(o->name, argv[i]) != 0)
			o++;
		if (!o->name)
			usage();
		if (o->seen)
			*o->seen = 1;
		if (o->kind == 'f') {
			*(int *)o->at = 1;
			continue;
		}
		const char *v = ++i < argc ? argv[i] : NULL;
		if (!v)
			usage();
		switch (o->kind) {
		case 'm':
			if (parse_mac(v, o->at) < 0)
				usage();
			break;
		case 'i':
			*(int *)o->at = atoi(v);
			break;
		case 'l':
			*(long long *)o->at = atoll(v);
			break;
		case 'd':
			*(double *)o->at = atof(v);
			break;
		default:
			*(const char **)o->at = v;
		}
	}
}

int main(int argc, char **argv)
{
	static const char *modes[] = { "recv", "send", "join", "echo", "ping", NULL };
	struct load o = { .mac = { 2, 0, 0, 0, 0, 1 }, .size = 64, .batch = 32 };
	const struct option_spec specs[] = {
		{ "--announce", 'f', &o.announce, NULL }, { "--nonblock", 'f', &o.nonblock, NULL },
		{ "--stream", 'f', &o.stream, NULL }, { "--mac", 'm', o.mac, NULL },
		{ "--dst", 'm', o.dst, &o.have_dst }, { "--from", 'm', o.from, &o.have_from },
		{ "--size", 'i', &o.size, NULL }, { "--batch", 'i', &o.batch, NULL },
		{ "--bufsize", 'i', &o.bufsize, NULL }, { "--delay-us", 'i', &o.delay_us, NULL },
		{ "--interval-us", 'i', &o.interval_us, NULL },
		{ "--duration", 'd', &o.duration, NULL }, { "--count", 'l', &o.count, NULL },
		{ "--rate", 'd', &o.rate, NULL },
		{ "--expect", 'l', &o.expect, NULL }, { "--marks", 's', &o.marks, NULL },
		{ NULL, 0, NULL, NULL },
	};
	char ourpath[108], descr[64];
	int mode = 0, fd;

	if (argc < 3)
		usage();
	while (modes[mode] && strcmp(argv[1], modes[mode]) != 0)
		mode++;
	if (!modes[mode])
		usage();
	parse_options(argc, argv, specs);
	if (o.size < 14 || o.size > MAXFRAME || o.batch < 1 || o.batch > MAXBATCH)
		usage();
	if (mode == 1 && (!o.have_dst || (o.duration <= 0 && o.count <= 0)))
		usage();
	if ((mode == 2 && o.count <= 0) || (mode == 4 && (!o.have_dst || o.count <= 0)))
		usage();
	if (o.stream && mode > 1)
		usage();                    /* --stream is for send and recv */

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;            /* no SA_RESTART: blocked calls return EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (mode == 2)
		return do_join(argv[2], o.count, o.marks);
	if (o.stream) {
		fd = stream_connect(argv[2]);
	} else {
		snprintf(descr, sizeof descr, "vdeload %s pid=%d", argv[1], (int)getpid());
		fd = vde_connect(argv[2], descr, ourpath, sizeof ourpath);
		unlink(ourpath);
		set_bufsize(fd, o.bufsize);
	}
	if (mode == 3)
		return do_echo(fd, o.mac);
	if (mode == 4)
		return do_ping(fd, o.mac, o.dst, o.count, o.interval_us);
	if (mode == 1)
		return do_send(fd, &o);
	return do_recv(fd, &o);
}
