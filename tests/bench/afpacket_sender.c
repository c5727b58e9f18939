/* Send every frame of a classic pcap file out of an interface at top speed.
 *
 *   afpacket_sender [-w] IFACE FILE.pcap [LOOPS]
 *
 * The whole file is read into memory first, then sent LOOPS times (default 1)
 * through one AF_PACKET SOCK_RAW socket with sendmmsg, BATCH frames per call.
 * -w: once loaded, print "ready" and wait for a line on stdin before sending.
 * On success it prints "sent N frames in S seconds (R retried calls)". Pin it
 * to a CPU with taskset. Built by tests/bench/run_bench_live.py: gcc -O2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH 256

/* Exits 1 naming what failed, and why when errno says. */
static void die(const char *what) {
    if (errno)
        fprintf(stderr, "afpacket_sender: %s: %s\n", what, strerror(errno));
    else
        fprintf(stderr, "afpacket_sender: %s\n", what);
    exit(1);
}

static uint32_t field(const unsigned char *at, int swap) {
    uint32_t value;
    memcpy(&value, at, 4);
    return swap ? __builtin_bswap32(value) : value;
}

/* Reads the pcap at path; returns its frames as iovecs (pointing into *data). */
static struct iovec *read_pcap(const char *path, size_t *count) {
    FILE *file = fopen(path, "rb");
    if (!file) die(path);
    if (fseek(file, 0, SEEK_END) != 0) die(path);
    long size = ftell(file);
    if (size < 0 || fseek(file, 0, SEEK_SET) != 0) die(path);
    errno = 0;
    if (size < 24) die("not a pcap file (too short)");
    unsigned char *data = malloc((size_t)size);
    if (!data) die("malloc");
    if (fread(data, 1, (size_t)size, file) != (size_t)size) die(path);
    fclose(file);
    uint32_t magic = field(data, 0);
    int swap = magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1;
    if (!swap && magic != 0xa1b2c3d4 && magic != 0xa1b23c4d) {
        errno = 0;
        die("not a classic pcap file (bad magic)");
    }
    size_t capacity = 1024, n = 0, at = 24;
    struct iovec *frames = malloc(capacity * sizeof *frames);
    while (frames && at + 16 <= (size_t)size) {
        uint32_t caplen = field(data + at + 8, swap);
        if (caplen > (size_t)size - at - 16) break;
        if (n == capacity) frames = realloc(frames, (capacity *= 2) * sizeof *frames);
        if (!frames) break;
        frames[n].iov_base = data + at + 16;
        frames[n++].iov_len = caplen;
        at += 16 + caplen;
    }
    if (!frames) die("malloc");
    if (at != (size_t)size) {
        errno = 0;
        die("truncated pcap record");
    }
    *count = n;
    return frames;
}

static int open_socket(const char *interface) {
    int fd = socket(AF_PACKET, SOCK_RAW, 0); /* protocol 0: receives nothing */
    if (fd < 0) die("socket(AF_PACKET)");
    struct sockaddr_ll address = {.sll_family = AF_PACKET};
    address.sll_ifindex = (int)if_nametoindex(interface);
    if (address.sll_ifindex == 0) die(interface);
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0) die("bind");
    return fd;
}

/* Sends frames[0..count) once; returns how many sendmmsg calls had to be retried. */
static unsigned long send_all(int fd, struct iovec *frames, size_t count) {
    struct mmsghdr batch[BATCH];
    unsigned long retries = 0;
    size_t done = 0;
    while (done < count) {
        unsigned int n = count - done < BATCH ? (unsigned int)(count - done) : BATCH;
        memset(batch, 0, n * sizeof batch[0]);
        for (unsigned int i = 0; i < n; i++) {
            batch[i].msg_hdr.msg_iov = &frames[done + i];
            batch[i].msg_hdr.msg_iovlen = 1;
        }
        int sent = sendmmsg(fd, batch, n, 0);
        if (sent < 0) {
            if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) die("sendmmsg");
            retries++;
            continue;
        }
        done += (size_t)sent;
    }
    return retries;
}

int main(int argc, char **argv) {
    int wait = argc > 1 && strcmp(argv[1], "-w") == 0;
    argv += wait, argc -= wait;
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: afpacket_sender [-w] IFACE FILE.pcap [LOOPS]\n");
        return 2;
    }
    long loops = argc == 4 ? strtol(argv[3], NULL, 10) : 1;
    if (loops < 1) {
        fprintf(stderr, "afpacket_sender: LOOPS must be at least 1\n");
        return 2;
    }
    size_t count;
    struct iovec *frames = read_pcap(argv[2], &count);
    int fd = open_socket(argv[1]);
    if (wait) {
        char line[16];
        printf("ready\n");
        fflush(stdout);
        errno = 0;
        if (!fgets(line, sizeof line, stdin)) die("stdin closed before the go line");
    }
    struct timespec start, end;
    unsigned long retries = 0;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long loop = 0; loop < loops; loop++) retries += send_all(fd, frames, count);
    clock_gettime(CLOCK_MONOTONIC, &end);
    double seconds = (double)(end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
    printf("sent %zu frames in %.6f seconds (%lu retried calls)\n", count * (size_t)loops,
           seconds, retries);
    return 0;
}
