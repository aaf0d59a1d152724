/* dht_peer: a Mainline DHT node in C on a POSIX UDP socket. It joins a DHT through a
   known node (`overlay dht start`, libtorrent, aria2, ...), announces that it has a
   torrent, then looks the torrent's peers up and checks that it finds itself.

     dht_peer --bootstrap 127.0.0.1:6881 [--bootstrap ADDR]... [--bind 127.0.0.1:0]
              [--info-hash HEX] [--port 51413] [--timeout 20]

   The whole program is the sans-IO pump of overlay.h around one socket and poll():

     1. drain: call overlay_dht_poll_output until it says WAIT, sending each TRANSMIT
        with sendto and acting on each EVENT (here: bootstrapped -> announce ->
        get_peers -> done);
     2. sleep in poll() until a datagram arrives or the WAIT deadline passes;
     3. hand every datagram to overlay_dht_handle_datagram, and go to 1.

   Build: cc -o dht_peer dht_peer.c $(pkg-config --cflags --libs overlay)
   Exit status: 0 when the node found its own announce, 1 on failure or timeout, 2 on
   bad usage. */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "overlay.h"

#define MAX_BOOTSTRAP 8

/* Microseconds on a clock that never jumps; the node only needs time to go forward. */
static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void fail(const char *what, overlay_result rc) {
    char msg[256];
    overlay_result_message(rc, msg, sizeof msg, NULL);
    fprintf(stderr, "dht_peer: %s: %s\n", what, msg);
    exit(1);
}

/* overlay_addr <-> struct sockaddr: the library never touches sockets. */
static socklen_t to_sockaddr(const overlay_addr *a, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    if (a->family == OVERLAY_IPV4) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(a->port);
        memcpy(&sin->sin_addr, a->ip, 4);
        return sizeof *sin;
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(a->port);
    memcpy(&sin6->sin6_addr, a->ip, 16);
    return sizeof *sin6;
}

static overlay_addr from_sockaddr(const struct sockaddr_storage *ss) {
    overlay_addr a;
    memset(&a, 0, sizeof a);
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        a.family = OVERLAY_IPV4;
        a.port = ntohs(sin->sin_port);
        memcpy(a.ip, &sin->sin_addr, 4);
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        a.family = OVERLAY_IPV6;
        a.port = ntohs(sin6->sin6_port);
        memcpy(a.ip, &sin6->sin6_addr, 16);
    }
    return a;
}

static const char *addr_text(const overlay_addr *a, char *buf, size_t cap) {
    if (overlay_addr_format(a, buf, cap, NULL) != OVERLAY_RESULT_OK) snprintf(buf, cap, "?");
    return buf;
}

static void usage(void) {
    fprintf(stderr, "usage: dht_peer --bootstrap ADDR [--bootstrap ADDR]... [--bind ADDR] "
                    "[--info-hash HEX] [--port P] [--timeout SECONDS]\n");
    exit(2);
}

int main(int argc, char **argv) {
    overlay_addr bootstrap[MAX_BOOTSTRAP], bind_addr;
    size_t bootstraps = 0;
    const char *info_hash_hex = "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401";
    unsigned long port = 51413, timeout_s = 20;
    setvbuf(stdout, NULL, _IOLBF, 0); /* a line at a time, also into a pipe or a log */
    overlay_addr_parse("127.0.0.1:0", &bind_addr);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (val == NULL) usage();
        if (strcmp(arg, "--bootstrap") == 0 && bootstraps < MAX_BOOTSTRAP) {
            if (overlay_addr_parse(val, &bootstrap[bootstraps++]) != OVERLAY_RESULT_OK) usage();
        } else if (strcmp(arg, "--bind") == 0) {
            if (overlay_addr_parse(val, &bind_addr) != OVERLAY_RESULT_OK) usage();
        } else if (strcmp(arg, "--info-hash") == 0) {
            info_hash_hex = val;
        } else if (strcmp(arg, "--port") == 0) {
            port = strtoul(val, NULL, 10);
        } else if (strcmp(arg, "--timeout") == 0) {
            timeout_s = strtoul(val, NULL, 10);
        } else {
            usage();
        }
        i++;
    }
    overlay_id info_hash;
    if (bootstraps == 0 || port == 0 || port > 65535 ||
        overlay_id_parse_hex(info_hash_hex, &info_hash) != OVERLAY_RESULT_OK) {
        usage();
    }

    /* The socket, bound; the node must know the address others reach it at. */
    struct sockaddr_storage ss;
    socklen_t sslen = to_sockaddr(&bind_addr, &ss);
    int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sslen) != 0) {
        perror("dht_peer: socket");
        return 1;
    }
    sslen = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sslen);
    overlay_addr me = from_sockaddr(&ss);

    /* The node. On loopback every node is 127.0.0.1, so BEP 5's one-node-per-IP rule
       (right on the Internet) must be off. */
    overlay_dht_config config;
    overlay_dht_config_default(&config);
    static const uint8_t v6_loopback[16] = {[15] = 1};
    int loopback = me.family == OVERLAY_IPV4 ? me.ip[0] == 127
                                             : memcmp(me.ip, v6_loopback, 16) == 0;
    config.restrict_ips = !loopback;
    overlay_dht *dht = NULL;
    overlay_result rc = overlay_dht_new(&config, &me, now_us(), &dht);
    if (rc != OVERLAY_RESULT_OK) fail("creating the node", rc);

    overlay_dht_snapshot snap;
    char text[OVERLAY_ADDR_TEXT_CAP], hex[41];
    overlay_dht_status(dht, &snap);
    overlay_id_format_hex(&snap.node.id, hex, sizeof hex, NULL);
    printf("listening on %s as %s\n", addr_text(&me, text, sizeof text), hex);

    const uint64_t start = now_us(), give_up = start + timeout_s * 1000000u;
    uint64_t query = 0;
    rc = overlay_dht_bootstrap(dht, now_us(), bootstrap, bootstraps, &query);
    if (rc != OVERLAY_RESULT_OK) fail("bootstrap", rc);

    int status = -1; /* -1 running, 0 success, 1 failure */
    uint8_t buf[OVERLAY_DHT_OUTPUT_CAP];   /* outputs: any alignment will do */
    static uint8_t datagram[65536];        /* input: never truncated before the node sees it */
    while (status < 0) {
        /* 1. Drain. */
        uint64_t wait_until = OVERLAY_NO_DEADLINE;
        for (;;) {
            overlay_dht_output out;
            uint64_t now = now_us();
            rc = overlay_dht_poll_output(dht, now, buf, sizeof buf, &out);
            if (rc != OVERLAY_RESULT_OK) fail("poll_output", rc);
            if (out.kind == OVERLAY_OUTPUT_KIND_WAIT) {
                wait_until = out.wait_until_us;
                break;
            }
            if (out.kind == OVERLAY_OUTPUT_KIND_TRANSMIT) {
                socklen_t len = to_sockaddr(&out.addr, &ss);
                if (sendto(fd, buf, out.len, 0, (struct sockaddr *)&ss, len) < 0) {
                    perror("dht_peer: sendto"); /* like a lost datagram: timeouts recover */
                }
                continue;
            }
            if (out.kind != OVERLAY_OUTPUT_KIND_EVENT) continue;

            const overlay_dht_event *e = &out.event;
            double ms = (double)(now - start) / 1000.0;
            switch (e->kind) {
            case OVERLAY_DHT_EVENT_KIND_BOOTSTRAPPED:
                printf("bootstrapped: %u nodes in the routing table (%.1f ms)\n", e->count, ms);
                rc = overlay_dht_announce(dht, now, &info_hash, (uint16_t)port, &query);
                if (rc != OVERLAY_RESULT_OK) fail("announce", rc);
                break;
            case OVERLAY_DHT_EVENT_KIND_ANNOUNCED:
                if (e->query != query) break;
                printf("announced %s port %lu to %u nodes (%u requests, %u rounds)\n",
                       info_hash_hex, port, e->count, e->stats.messages, e->stats.rounds);
                if (e->count == 0) {
                    fprintf(stderr, "dht_peer: no node stored the announce\n");
                    status = 1;
                    break;
                }
                rc = overlay_dht_get_peers(dht, now, &info_hash, &query);
                if (rc != OVERLAY_RESULT_OK) fail("get_peers", rc);
                break;
            case OVERLAY_DHT_EVENT_KIND_PEERS: {
                if (e->query != query) break;
                printf("%u peers of %s (%u requests, %u rounds, %.1f ms):\n", e->count,
                       info_hash_hex, e->stats.messages, e->stats.rounds, ms);
                overlay_addr self = me;
                self.port = (uint16_t)port;
                int found_self = 0;
                for (uint32_t i = 0; i < e->count; i++) {
                    overlay_addr peer; /* records in the buffer: copy each out */
                    memcpy(&peer, buf + i * sizeof peer, sizeof peer);
                    int is_self = memcmp(&peer, &self, sizeof peer) == 0;
                    found_self |= is_self;
                    printf("  %s%s\n", addr_text(&peer, text, sizeof text),
                           is_self ? "  (this node)" : "");
                }
                status = found_self ? 0 : 1;
                if (!found_self) fprintf(stderr, "dht_peer: our own announce is not there\n");
                break;
            }
            case OVERLAY_DHT_EVENT_KIND_FAILED:
                if (e->query == query) fail("the command failed", e->error);
                break;
            default:
                break;
            }
        }
        if (status >= 0) break;

        /* 2. Sleep until a datagram or the deadline (or our own time limit). */
        uint64_t now = now_us();
        if (now >= give_up) {
            fprintf(stderr, "dht_peer: no result within %lu s\n", timeout_s);
            status = 1;
            break;
        }
        uint64_t until = wait_until < give_up ? wait_until : give_up;
        int timeout_ms = until <= now ? 0 : (int)((until - now + 999) / 1000);
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, timeout_ms) < 0 && errno != EINTR) {
            perror("dht_peer: poll");
            status = 1;
            break;
        }

        /* 3. Hand every waiting datagram to the node. */
        for (;;) {
            struct sockaddr_storage from;
            socklen_t fromlen = sizeof from;
            ssize_t n = recvfrom(fd, datagram, sizeof datagram, MSG_DONTWAIT,
                                 (struct sockaddr *)&from, &fromlen);
            if (n < 0) break; /* EAGAIN: nothing more now */
            overlay_addr sender = from_sockaddr(&from);
            rc = overlay_dht_handle_datagram(dht, now_us(), &sender, datagram, (size_t)n);
            if (rc != OVERLAY_RESULT_OK) fail("handle_datagram", rc);
        }
    }

    overlay_dht_status(dht, &snap);
    printf("%s: %llu datagrams received, %llu sent, %llu malformed\n",
           status == 0 ? "done" : "failed", (unsigned long long)snap.received,
           (unsigned long long)snap.sent, (unsigned long long)snap.malformed);
    overlay_dht_free(dht);
    close(fd);
    return status;
}
