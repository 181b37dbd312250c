/*
 * vdeload: a minimal VDE client for load tests of a vde_switch.
 *
 *   vdeload send DIR --mac MAC --dst MAC --size N (--duration S | --count N)
 *                    [--nonblock] [--batch N]
 *   vdeload recv DIR --mac MAC [--from MAC] [--announce] [--batch N]
 *                    [--delay-us N] [--expect N]
 *   vdeload join DIR --count N [--marks N,N,...]
 *   vdeload echo DIR --mac MAC
 *   vdeload ping DIR --mac MAC --dst MAC --count N [--interval-us N]
 *
 * Both modes do the v3 handshake on DIR/ctl themselves (request with the
 * address of our bound datagram socket, 110-byte reply, connect to it),
 * then print "READY" on stdout.
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
	unsigned char f[60] = { 0 };
	memset(f, 0xff, 6);
	memcpy(f + 6, me, 6);
	f[12] = 0x88;
	f[13] = 0xb5;
	if (send(fd, f, sizeof f, 0) < 0)
		die("send announce");
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
	unsigned char f[64] = { 0 };
	char line[64];
	double *rtt = calloc(count > 0 ? count : 1, sizeof *rtt);
	long long got = 0, lost = 0;

	memset(f, 0xff, 6);                 /* announce first */
	memcpy(f + 6, me, 6);
	f[12] = 0x88;
	f[13] = 0xb5;
	if (send(fd, f, 60, 0) < 0)
		die("send announce");
	printf("READY\n");
	fflush(stdout);
	if (!fgets(line, sizeof line, stdin))
		return 1;
	memcpy(f, dst, 6);
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
			if (n < 0) {
				if (errno == EINTR)
					continue;
				lost++;     /* timed out */
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
		"usage: vdeload send DIR --mac MAC --dst MAC --size N (--duration S | --count N) [--nonblock] [--batch N]\n"
		"       vdeload recv DIR --mac MAC [--from MAC] [--announce] [--batch N] [--delay-us N] [--expect N]\n"
		"       vdeload join DIR --count N [--marks N,N,...]\n"
		"       vdeload echo DIR --mac MAC\n"
		"       vdeload ping DIR --mac MAC --dst MAC --count N [--interval-us N]\n");
	exit(2);
}

static int do_send(int fd, const unsigned char *src, const unsigned char *dst, int size,
		   double duration, long long count, int nonblock, int batch)
{
	static unsigned char frame[MAXFRAME];
	struct mmsghdr msgs[MAXBATCH];
	struct iovec iov;
	long long sent = 0, eagain = 0, enobufs = 0, errors = 0;
	char line[64];
	double t0, t1, deadline;

	memset(frame, 0, sizeof frame);
	memcpy(frame, dst, 6);
	memcpy(frame + 6, src, 6);
	frame[12] = 0x88;
	frame[13] = 0xb5;
	iov.iov_base = frame;
	iov.iov_len = size;
	memset(msgs, 0, sizeof msgs);
	for (int i = 0; i < batch; i++) {
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}

	printf("READY\n");
	fflush(stdout);
	if (!fgets(line, sizeof line, stdin))
		return 1;

	t0 = now_s();
	deadline = duration > 0 ? t0 + duration : 0;
	for (;;) {
		int want = batch;
		if (count > 0) {
			if (sent >= count)
				break;
			if (count - sent < want)
				want = (int)(count - sent);
		} else if (now_s() >= deadline) {
			break;
		}
		if (stop_flag)
			break;
		int n = sendmmsg(fd, msgs, want, nonblock ? MSG_DONTWAIT : 0);
		if (n > 0) {
			sent += n;
			continue;
		}
		if (errno == EAGAIN)
			eagain++;
		else if (errno == ENOBUFS)
			enobufs++;
		else if (errno == EINTR)
			continue;
		else {
			errors++;
			if (errors > 1000)
				break;
		}
	}
	t1 = now_s();
	printf("{\"sent\": %lld, \"elapsed\": %.6f, \"eagain\": %lld, \"enobufs\": %lld, "
	       "\"errors\": %lld, \"size\": %d}\n", sent, t1 - t0, eagain, enobufs, errors, size);
	fflush(stdout);
	return 0;
}

static int do_recv(int fd, const unsigned char *me, const unsigned char *from, int announce,
		   int batch, int delay_us, long long expect)
{
	static unsigned char bufs[MAXBATCH][MAXFRAME];
	struct mmsghdr msgs[MAXBATCH];
	struct iovec iovs[MAXBATCH];
	long long frames = 0, bytes = 0, other = 0, wakeups = 0;
	double first = 0, last = 0;

	if (announce) {
		unsigned char f[60] = { 0 };
		memset(f, 0xff, 6);
		memcpy(f + 6, me, 6);
		f[12] = 0x88;
		f[13] = 0xb5;
		if (send(fd, f, sizeof f, 0) < 0)
			die("send announce");
	}
	for (int i = 0; i < batch; i++) {
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
		int n = recvmmsg(fd, msgs, batch, MSG_WAITFORONE, NULL);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("recvmmsg");
		}
		double t = now_s();
		wakeups++;
		for (int i = 0; i < n; i++) {
			unsigned len = msgs[i].msg_len;
			if (from && (len < 12 || memcmp(bufs[i] + 6, from, 6) != 0)) {
				other++;
				continue;
			}
			if (frames == 0)
				first = t;
			last = t;
			frames++;
			bytes += len;
		}
		if (expect > 0 && frames >= expect)
			break;
		if (delay_us > 0)
			usleep(delay_us);
	}
	printf("{\"frames\": %lld, \"bytes\": %lld, \"other\": %lld, \"wakeups\": %lld, "
	       "\"window\": %.6f}\n", frames, bytes, other, wakeups, frames ? last - first : 0.0);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned char mac[6] = { 2, 0, 0, 0, 0, 1 }, dst[6], from[6];
	int have_dst = 0, have_from = 0, announce = 0, nonblock = 0, delay_us = 0, interval_us = 0;
	long long expect = 0;
	const char *marks = NULL;
	int size = 64, batch = 32, bufsize = 0;
	double duration = 0;
	long long count = 0;
	char ourpath[108], descr[64];
	int sending, fd;

	if (argc < 3)
		usage();
	if (strcmp(argv[1], "send") == 0)
		sending = 1;
	else if (strcmp(argv[1], "recv") == 0)
		sending = 0;
	else if (strcmp(argv[1], "join") == 0)
		sending = 2;
	else if (strcmp(argv[1], "echo") == 0)
		sending = 3;
	else if (strcmp(argv[1], "ping") == 0)
		sending = 4;
	else
		usage();
	for (int i = 3; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--announce") == 0) {
			announce = 1;
			continue;
		}
		if (strcmp(a, "--nonblock") == 0) {
			nonblock = 1;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (strcmp(a, "--mac") == 0) {
			if (parse_mac(v, mac) < 0)
				usage();
		} else if (strcmp(a, "--dst") == 0) {
			if (parse_mac(v, dst) < 0)
				usage();
			have_dst = 1;
		} else if (strcmp(a, "--from") == 0) {
			if (parse_mac(v, from) < 0)
				usage();
			have_from = 1;
		} else if (strcmp(a, "--size") == 0) {
			size = atoi(v);
		} else if (strcmp(a, "--duration") == 0) {
			duration = atof(v);
		} else if (strcmp(a, "--count") == 0) {
			count = atoll(v);
		} else if (strcmp(a, "--batch") == 0) {
			batch = atoi(v);
		} else if (strcmp(a, "--bufsize") == 0) {
			bufsize = atoi(v);
		} else if (strcmp(a, "--delay-us") == 0) {
			delay_us = atoi(v);
		} else if (strcmp(a, "--interval-us") == 0) {
			interval_us = atoi(v);
		} else if (strcmp(a, "--expect") == 0) {
			expect = atoll(v);
		} else if (strcmp(a, "--marks") == 0) {
			marks = v;
		} else {
			usage();
		}
	}
	if (size < 14 || size > MAXFRAME || batch < 1 || batch > MAXBATCH)
		usage();
	if (sending == 1 && (!have_dst || (duration <= 0 && count <= 0)))
		usage();
	if ((sending == 2 && count <= 0) || (sending == 4 && (!have_dst || count <= 0)))
		usage();

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;            /* no SA_RESTART: blocked calls return EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (sending == 2)
		return do_join(argv[2], count, marks);
	snprintf(descr, sizeof descr, "vdeload %s pid=%d", argv[1], (int)getpid());
	fd = vde_connect(argv[2], descr, ourpath, sizeof ourpath);
	unlink(ourpath);
	set_bufsize(fd, bufsize);
	if (sending == 3)
		return do_echo(fd, mac);
	if (sending == 4)
		return do_ping(fd, mac, dst, count, interval_us);
	if (sending)
		return do_send(fd, mac, dst, size, duration, count, nonblock, batch);
	return do_recv(fd, mac, have_from ? from : NULL, announce, batch, delay_us, expect);
}
