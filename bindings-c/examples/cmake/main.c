/* Three Chord nodes in one process, their datagrams handed straight from one to the
   other: node 0 starts a ring, 1 and 2 join it, 2 stores a value and 1 reads it back. */
#include <overlay.h>
#include <stdio.h>
#include <string.h>

#define NODES 3

static overlay_chord *node[NODES];
static overlay_addr addr[NODES];
static int got_value;

/* Drains node i; its datagrams go straight to their destination (no latency), which is
   drained in turn. */
static void drain(int i, uint64_t now) {
    uint8_t buf[OVERLAY_CHORD_OUTPUT_CAP];
    overlay_chord_output out;
    while (overlay_chord_poll_output(node[i], now, buf, sizeof buf, &out) == OVERLAY_RESULT_OK &&
           out.kind != OVERLAY_OUTPUT_KIND_WAIT) {
        if (out.kind == OVERLAY_OUTPUT_KIND_TRANSMIT) {
            for (int j = 0; j < NODES; j++) {
                if (memcmp(&addr[j], &out.addr, sizeof out.addr) == 0) {
                    overlay_chord_handle_datagram(node[j], now, &addr[i], buf, out.len);
                    drain(j, now);
                }
            }
        } else if (out.kind == OVERLAY_OUTPUT_KIND_EVENT &&
                   out.event.kind == OVERLAY_CHORD_EVENT_KIND_GET_DONE && out.event.found) {
            printf("node %d got \"%.*s\" back after %u hops\n", i, (int)out.len, buf,
                   out.event.hops);
            got_value = 1;
        }
    }
}

int main(void) {
    overlay_chord_config config;
    overlay_chord_config_default(&config);
    uint64_t q, now = 0;
    for (int i = 0; i < NODES; i++) {
        char text[32];
        snprintf(text, sizeof text, "10.0.0.%d:7000", i + 1);
        overlay_addr_parse(text, &addr[i]);
        if (overlay_chord_new(&config, &addr[i], (uint64_t)i, &node[i]) != OVERLAY_RESULT_OK) {
            return 1;
        }
    }
    overlay_chord_create(node[0], now);
    for (int i = 1; i < NODES; i++) {
        overlay_chord_join(node[i], now, &addr[0], &q);
        drain(i, now);
    }
    /* A few seconds of stabilization, every node's timers fired in turn. */
    for (now = 0; now < 5000000; now += 100000) {
        for (int i = 0; i < NODES; i++) drain(i, now);
    }
    overlay_chord_put(node[2], now, (const uint8_t *)"hello", 5, (const uint8_t *)"world", 5, &q);
    drain(2, now);
    overlay_chord_get(node[1], now, (const uint8_t *)"hello", 5, &q);
    drain(1, now);
    for (int i = 0; i < NODES; i++) overlay_chord_free(node[i]);
    return got_value ? 0 : 1;
}
