/*
 * qemuload: a minimal QEMU "-netdev stream" client for load tests of a
 * switch's --qemu-stream socket (the counterpart of vdeload.c).
 *
 *   qemuload send PATH --mac MAC --dst MAC --size N (--duration S | --count N)
 *   qemuload recv PATH --mac MAC [--from MAC] [--announce]
 *
 * Both connect to the unix stream socket PATH, where each frame travels
 * as a 4-byte big-endian length and the frame, and print "READY".
 *
 * send: waits for a line on stdin, then writes frames dst|src|0x88b5|zeros
 *       of N bytes, 32 records per write, as fast as the socket takes
 *       them (blocking), for S seconds or N frames.
 * recv: with --announce first sends one broadcast frame from MAC; then
 *       counts the frames (from MAC --from only, when given) until
 *       SIGTERM/SIGINT/SIGUSR1.
 *
 * Results are one line of JSON on stdout, as vdeload prints them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAXFRAME 9234
#define PER_WRITE 32
#define RECV_BUF (1 << 20)

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void die(const char *what)
{
	fprintf(stderr, "qemuload: %s: %s\n", what, strerror(errno));
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

static void put_record(unsigned char *at, const unsigned char *dst, const unsigned char *src,
		       int size)
{
	uint32_t n = (uint32_t)size;
	at[0] = n >> 24;
	at[1] = n >> 16;
	at[2] = n >> 8;
	at[3] = n;
	memset(at + 4, 0, size);
	memcpy(at + 4, dst, 6);
	memcpy(at + 10, src, 6);
	at[16] = 0x88;
	at[17] = 0xb5;
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

static void usage(void)
{
	fprintf(stderr,
		"usage: qemuload send PATH --mac MAC --dst MAC --size N (--duration S | --count N)\n"
		"       qemuload recv PATH --mac MAC [--from MAC] [--announce]\n");
	exit(2);
}

static int do_send(int fd, const unsigned char *src, const unsigned char *dst, int size,
		   double duration, long long count)
{
	static unsigned char block[PER_WRITE * (MAXFRAME + 4)];
	long long sent = 0, errors = 0;
	char line[64];
	double t0, t1, deadline;
	size_t rec = (size_t)size + 4;

	for (int i = 0; i < PER_WRITE; i++)
		put_record(block + i * rec, dst, src, size);
	printf("READY\n");
	fflush(stdout);
	if (!fgets(line, sizeof line, stdin))
		return 1;
	t0 = now_s();
	deadline = duration > 0 ? t0 + duration : 0;
	for (;;) {
		int want = PER_WRITE;
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
		if (write_all(fd, block, want * rec) < 0) {
			errors++;
			break;
		}
		sent += want;
	}
	t1 = now_s();
	printf("{\"sent\": %lld, \"elapsed\": %.6f, \"eagain\": 0, \"enobufs\": 0, "
	       "\"errors\": %lld, \"size\": %d}\n", sent, t1 - t0, errors, size);
	fflush(stdout);
	return 0;
}

static int do_recv(int fd, const unsigned char *me, const unsigned char *from, int announce)
{
	static unsigned char buf[RECV_BUF];
	size_t have = 0;
	long long frames = 0, bytes = 0, other = 0, wakeups = 0;
	double first = 0, last = 0;

	if (announce) {
		unsigned char rec[64];
		put_record(rec, (const unsigned char *)"\xff\xff\xff\xff\xff\xff", me, 60);
		if (write_all(fd, rec, sizeof rec) < 0)
			die("send announce");
	}
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	printf("READY\n");
	fflush(stdout);
	while (!stop_flag) {
		ssize_t n = read(fd, buf + have, sizeof buf - have);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("read");
		}
		if (n == 0)
			break;
		double t = now_s();
		wakeups++;
		have += (size_t)n;
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
			const unsigned char *f = buf + pos + 4;
			if (from && (len < 12 || memcmp(f + 6, from, 6) != 0)) {
				other++;
			} else {
				if (frames == 0)
					first = t;
				last = t;
				frames++;
				bytes += len;
			}
			pos += 4 + len;
		}
		memmove(buf, buf + pos, have - pos);
		have -= pos;
	}
	printf("{\"frames\": %lld, \"bytes\": %lld, \"other\": %lld, \"wakeups\": %lld, "
	       "\"window\": %.6f}\n", frames, bytes, other, wakeups, frames ? last - first : 0.0);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned char mac[6] = { 2, 0, 0, 0, 0, 1 }, dst[6], from[6];
	int have_dst = 0, have_from = 0, announce = 0, size = 64, sending, fd;
	double duration = 0;
	long long count = 0;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	if (argc < 3)
		usage();
	if (strcmp(argv[1], "send") == 0)
		sending = 1;
	else if (strcmp(argv[1], "recv") == 0)
		sending = 0;
	else
		usage();
	for (int i = 3; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--announce") == 0) {
			announce = 1;
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
		} else {
			usage();
		}
	}
	if (size < 14 || size > MAXFRAME)
		usage();
	if (sending && (!have_dst || (duration <= 0 && count <= 0)))
		usage();

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (snprintf(addr.sun_path, sizeof addr.sun_path, "%s", argv[2]) >= (int)sizeof addr.sun_path) {
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
	if (sending)
		return do_send(fd, mac, dst, size, duration, count);
	return do_recv(fd, mac, have_from ? from : NULL, announce);
}
