/* Opens a tap the usual way (/dev/net/tun, TUNSETIFF), prints its name,
 * writes the frame given in hex as argv[1], then prints in hex the first
 * frame read whose bytes 12-13 are 88 b5 (within 30 s) and exits 0; exits 1
 * on any failure.  Run under libvdetap.so, it talks to a VDE switch. */
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	unsigned char out[2048], in[2048];
	size_t n = 0;
	struct ifreq ifr;
	int fd;
	time_t end;
	if (argc < 2)
		return 1;
	for (const char *p = argv[1]; p[0] && p[1] && n < sizeof(out); p += 2)
		sscanf(p, "%2hhx", &out[n++]);
	fd = open("/dev/net/tun", O_RDWR);
	if (fd < 0) { perror("open"); return 1; }
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) { perror("TUNSETIFF"); return 1; }
	printf("%s\n", ifr.ifr_name);
	fflush(stdout);
	if (write(fd, out, n) != (ssize_t)n) { perror("write"); return 1; }
	end = time(NULL) + 30;
	while (time(NULL) < end) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t got;
		if (poll(&pfd, 1, 1000) <= 0)
			continue;
		got = read(fd, in, sizeof(in));
		if (got < 14) { perror("read"); return 1; }
		if (in[12] != 0x88 || in[13] != 0xb5)
			continue;
		for (ssize_t i = 0; i < got; i++)
			printf("%02x", in[i]);
		printf("\n");
		return 0;
	}
	return 1;
}
