/* Every function of overlay.h, and every way to call one wrongly: NULL handles and
   pointers, short buffers (which must change nothing), bad addresses and text, malformed
   datagrams, commands the machine refuses. Single handles only; tests/network.c runs
   networks of them. */
#include "overlay.h"

#include <stdint.h>
#include <string.h>

#include "check.h"

static overlay_addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) {
    overlay_addr addr;
    memset(&addr, 0, sizeof addr);
    addr.family = OVERLAY_IPV4;
    addr.port = port;
    addr.ip[0] = a;
    addr.ip[1] = b;
    addr.ip[2] = c;
    addr.ip[3] = d;
    return addr;
}

static void test_result_messages(void) {
    static const overlay_result codes[] = {
        OVERLAY_RESULT_OK, OVERLAY_RESULT_NULL_ARGUMENT, OVERLAY_RESULT_INVALID_ARGUMENT,
        OVERLAY_RESULT_BUFFER_TOO_SMALL, OVERLAY_RESULT_PANIC, OVERLAY_RESULT_POISONED,
        OVERLAY_RESULT_BUSY, OVERLAY_RESULT_NOT_MEMBER, OVERLAY_RESULT_ALREADY_MEMBER,
        OVERLAY_RESULT_VALUE_TOO_LARGE, OVERLAY_RESULT_BAD_ITEM, OVERLAY_RESULT_NO_NODES,
        OVERLAY_RESULT_FULL, OVERLAY_RESULT_NOT_CONNECTED, OVERLAY_RESULT_NO_UPLOAD,
        OVERLAY_RESULT_UNREACHABLE, OVERLAY_RESULT_STORE_FULL, OVERLAY_RESULT_LEFT,
        OVERLAY_RESULT_ITEM_LOST,
    };
    char buf[256], other[256];
    size_t len = 0;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        CHECK_RC(overlay_result_message(codes[i], buf, sizeof buf, &len), OVERLAY_RESULT_OK);
        CHECK(len > 0 && len == strlen(buf));
        CHECK(strcmp(buf, "unknown result code") != 0);
        if (i > 0) {
            overlay_result_message(codes[i - 1], other, sizeof other, NULL);
            CHECK(strcmp(buf, other) != 0);
        }
    }
    CHECK_RC(overlay_result_message(9999, buf, sizeof buf, &len), OVERLAY_RESULT_OK);
    CHECK(strcmp(buf, "unknown result code") == 0);

    /* A short buffer: nothing written, the length reported (as snprintf counts it). */
    CHECK_RC(overlay_result_message(OVERLAY_RESULT_BUSY, buf, sizeof buf, &len), OVERLAY_RESULT_OK);
    size_t full = len;
    memset(buf, 'x', sizeof buf);
    len = 0;
    CHECK_RC(overlay_result_message(OVERLAY_RESULT_BUSY, buf, full, &len),
             OVERLAY_RESULT_BUFFER_TOO_SMALL);
    CHECK(len == full);
    CHECK(buf[0] == 'x' && buf[full - 1] == 'x');
    CHECK_RC(overlay_result_message(OVERLAY_RESULT_BUSY, buf, full + 1, &len), OVERLAY_RESULT_OK);
    CHECK(buf[full] == '\0');
    /* Asking for the length alone. */
    CHECK_RC(overlay_result_message(OVERLAY_RESULT_BUSY, NULL, 0, &len),
             OVERLAY_RESULT_BUFFER_TOO_SMALL);
    CHECK(len == full);
    CHECK_RC(overlay_result_message(OVERLAY_RESULT_BUSY, NULL, 8, &len),
             OVERLAY_RESULT_NULL_ARGUMENT);
}

static void test_addresses_and_ids(void) {
    overlay_addr a;
    char text[OVERLAY_ADDR_TEXT_CAP];
    size_t len = 0;

    CHECK_RC(overlay_addr_parse("127.0.0.1:6881", &a), OVERLAY_RESULT_OK);
    CHECK(a.family == OVERLAY_IPV4 && a.port == 6881 && a.ip[0] == 127 && a.ip[3] == 1);
    CHECK_RC(overlay_addr_format(&a, text, sizeof text, &len), OVERLAY_RESULT_OK);
    CHECK(strcmp(text, "127.0.0.1:6881") == 0 && len == 14);

    CHECK_RC(overlay_addr_parse("[2001:db8::1]:443", &a), OVERLAY_RESULT_OK);
    CHECK(a.family == OVERLAY_IPV6 && a.port == 443 && a.ip[0] == 0x20 && a.ip[15] == 1);
    CHECK_RC(overlay_addr_format(&a, text, sizeof text, NULL), OVERLAY_RESULT_OK);
    CHECK(strcmp(text, "[2001:db8::1]:443") == 0);

    /* Short buffer: "[2001:db8::1]:443" is 17 characters and needs 18 bytes. */
    memset(text, 'x', sizeof text);
    CHECK_RC(overlay_addr_format(&a, text, 17, &len), OVERLAY_RESULT_BUFFER_TOO_SMALL);
    CHECK(len == 17 && text[0] == 'x');
    CHECK_RC(overlay_addr_format(&a, text, 18, &len), OVERLAY_RESULT_OK);

    overlay_addr before = a;
    CHECK_RC(overlay_addr_parse("localhost:80", &a), OVERLAY_RESULT_INVALID_ARGUMENT);
    CHECK_RC(overlay_addr_parse("127.0.0.1", &a), OVERLAY_RESULT_INVALID_ARGUMENT);
    CHECK_RC(overlay_addr_parse("1.2.3.4:99999", &a), OVERLAY_RESULT_INVALID_ARGUMENT);
    CHECK_RC(overlay_addr_parse("", &a), OVERLAY_RESULT_INVALID_ARGUMENT);
    CHECK_RC(overlay_addr_parse("\xff\xfe:1", &a), OVERLAY_RESULT_INVALID_ARGUMENT);
    CHECK(memcmp(&a, &before, sizeof a) == 0); /* errors change nothing */
    CHECK_RC(overlay_addr_parse(NULL, &a), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_addr_parse("1.2.3.4:5", NULL), OVERLAY_RESULT_NULL_ARGUMENT);

    overlay_addr bad = a;
    bad.family = 5;
    CHECK_RC(overlay_addr_format(&bad, text, sizeof text, &len), OVERLAY_RESULT_INVALID_ARGUMENT);
    CHECK_RC(overlay_addr_format(NULL, text, sizeof text, &len), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_addr_format(&a, NULL, 4, &len), OVERLAY_RESULT_NULL_ARGUMENT);

    overlay_id id;
    char hex[41];
    const char *h = "5FBFBFF10C5D6A4EC8A88E4C6AB4C28B95EEE401";
    CHECK_RC(overlay_id_parse_hex(h, &id), OVERLAY_RESULT_OK);
    CHECK(id.bytes[0] == 0x5f && id.bytes[19] == 0x01);
    CHECK_RC(overlay_id_format_hex(&id, hex, sizeof hex, &len), OVERLAY_RESULT_OK);
    CHECK(len == 40 && strcmp(hex, "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401") == 0);
    memset(hex, 'x', sizeof hex);
    CHECK_RC(overlay_id_format_hex(&id, hex, 40, &len), OVERLAY_RESULT_BUFFER_TOO_SMALL);
    CHECK(len == 40 && hex[0] == 'x');
    overlay_id kept = id;
    CHECK_RC(overlay_id_parse_hex("5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee40", &id),
             OVERLAY_RESULT_INVALID_ARGUMENT);
    CHECK_RC(overlay_id_parse_hex("5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee40g", &id),
             OVERLAY_RESULT_INVALID_ARGUMENT);
    CHECK(memcmp(&id, &kept, sizeof id) == 0);
    CHECK_RC(overlay_id_parse_hex(NULL, &id), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_id_parse_hex(h, NULL), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_id_format_hex(NULL, hex, sizeof hex, &len), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_id_format_hex(&id, NULL, 41, &len), OVERLAY_RESULT_NULL_ARGUMENT);
}

/* Drains `h` at `now`: counts transmits and returns the first event of `kind` (copied), its
   data into `data`. */
static int chord_drain(overlay_chord *h, uint64_t now, overlay_chord_event_kind kind,
                       overlay_chord_event *event, uint8_t *data, size_t *data_len,
                       int *transmits) {
    uint8_t buf[OVERLAY_CHORD_OUTPUT_CAP];
    int found = 0;
    for (int i = 0; i < 1000; i++) {
        overlay_chord_output out;
        if (overlay_chord_poll_output(h, now, buf, sizeof buf, &out) != OVERLAY_RESULT_OK) {
            return -1;
        }
        if (out.kind == OVERLAY_OUTPUT_KIND_WAIT) {
            return found;
        }
        if (out.kind == OVERLAY_OUTPUT_KIND_TRANSMIT && transmits) {
            (*transmits)++;
        }
        if (out.kind == OVERLAY_OUTPUT_KIND_EVENT && out.event.kind == kind && !found) {
            found = 1;
            *event = out.event;
            if (data) {
                memcpy(data, buf, out.len);
                *data_len = out.len;
            }
        }
    }
    return -1;
}

static void test_chord(void) {
    overlay_chord_config config;
    CHECK_RC(overlay_chord_config_default(&config), OVERLAY_RESULT_OK);
    CHECK(config.successors == 8 && config.stabilize_interval_ms == 1000);
    CHECK(config.request_timeout_ms == 500 && config.route_through_successor_list);
    CHECK_RC(overlay_chord_config_default(NULL), OVERLAY_RESULT_NULL_ARGUMENT);

    overlay_addr me = v4(10, 0, 0, 1, 7000), other = v4(10, 0, 0, 2, 7000);
    overlay_chord *h = NULL;
    CHECK_RC(overlay_chord_new(NULL, &me, 1, &h), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_chord_new(&config, NULL, 1, &h), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_chord_new(&config, &me, 1, NULL), OVERLAY_RESULT_NULL_ARGUMENT);
    overlay_addr bad = me;
    bad.family = 0;
    CHECK_RC(overlay_chord_new(&config, &bad, 1, &h), OVERLAY_RESULT_INVALID_ARGUMENT);
    CHECK(h == NULL);
    overlay_chord_free(NULL); /* a no-op */

    /* NULL handle: every function says so. */
    uint64_t q = 0;
    uint8_t buf[OVERLAY_CHORD_OUTPUT_CAP];
    overlay_chord_output out;
    overlay_chord_snapshot st;
    CHECK_RC(overlay_chord_handle_datagram(NULL, 0, &other, buf, 1), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_chord_poll_output(NULL, 0, buf, sizeof buf, &out),
             OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_chord_create(NULL, 0), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_chord_join(NULL, 0, &other, &q), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_chord_client(NULL, &other), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_chord_lookup(NULL, 0, (const uint8_t *)"k", 1, &q),
             OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_chord_put(NULL, 0, (const uint8_t *)"k", 1, (const uint8_t *)"v", 1, &q),
             OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_chord_get(NULL, 0, (const uint8_t *)"k", 1, &q), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_chord_leave(NULL, 0), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_chord_status(NULL, &st), OVERLAY_RESULT_NULL_ARGUMENT);

    CHECK_RC(overlay_chord_new(&config, &me, 1, &h), OVERLAY_RESULT_OK);
    REQUIRE(h != NULL);
    CHECK_RC(overlay_chord_status(h, &st), OVERLAY_RESULT_OK);
    CHECK(st.phase == OVERLAY_CHORD_PHASE_IDLE && st.node.addr.port == 7000);
    CHECK_RC(overlay_chord_status(h, NULL), OVERLAY_RESULT_NULL_ARGUMENT);

    /* An idle node: nothing to do, no timer. */
    CHECK_RC(overlay_chord_poll_output(h, 0, buf, sizeof buf, &out), OVERLAY_RESULT_OK);
    CHECK(out.kind == OVERLAY_OUTPUT_KIND_WAIT && out.wait_until_us == OVERLAY_NO_DEADLINE);
    CHECK_RC(overlay_chord_poll_output(h, 0, NULL, 0, &out), OVERLAY_RESULT_OK); /* no bytes */
    CHECK_RC(overlay_chord_poll_output(h, 0, buf, sizeof buf, NULL), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_chord_poll_output(h, 0, NULL, 16, &out), OVERLAY_RESULT_NULL_ARGUMENT);

    /* Commands an idle node refuses, and arguments refused before anything starts. */
    CHECK_RC(overlay_chord_lookup(h, 0, (const uint8_t *)"k", 1, &q), OVERLAY_RESULT_NOT_MEMBER);
    CHECK_RC(overlay_chord_get(h, 0, (const uint8_t *)"k", 1, &q), OVERLAY_RESULT_NOT_MEMBER);
    CHECK_RC(overlay_chord_leave(h, 0), OVERLAY_RESULT_NOT_MEMBER);
    CHECK_RC(overlay_chord_join(h, 0, NULL, &q), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_chord_join(h, 0, &other, NULL), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_chord_join(h, 0, &bad, &q), OVERLAY_RESULT_INVALID_ARGUMENT);
    CHECK_RC(overlay_chord_client(h, NULL), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_chord_status(h, &st), OVERLAY_RESULT_OK);
    CHECK(st.phase == OVERLAY_CHORD_PHASE_IDLE); /* the refused calls changed nothing */

    /* Joining: the join request goes out; a buffer too small for it changes nothing. */
    CHECK_RC(overlay_chord_join(h, 10, &other, &q), OVERLAY_RESULT_OK);
    uint64_t join = q;
    CHECK_RC(overlay_chord_create(h, 10), OVERLAY_RESULT_ALREADY_MEMBER);
    memset(buf, 0xab, sizeof buf);
    out.len = 0;
    CHECK_RC(overlay_chord_poll_output(h, 10, buf, 4, &out), OVERLAY_RESULT_BUFFER_TOO_SMALL);
    size_t needed = out.len;
    CHECK(out.kind == OVERLAY_OUTPUT_KIND_NONE && needed > 4);
    CHECK(buf[0] == 0xab && buf[3] == 0xab);
    CHECK_RC(overlay_chord_poll_output(h, 10, buf, 4, &out), OVERLAY_RESULT_BUFFER_TOO_SMALL);
    CHECK(out.len == needed); /* still the same output */
    CHECK_RC(overlay_chord_poll_output(h, 10, buf, needed, &out), OVERLAY_RESULT_OK);
    CHECK(out.kind == OVERLAY_OUTPUT_KIND_TRANSMIT && out.len == needed);
    CHECK(memcmp(&out.addr, &other, sizeof other) == 0);
    CHECK_RC(overlay_chord_poll_output(h, 10, buf, sizeof buf, &out), OVERLAY_RESULT_OK);
    CHECK(out.kind == OVERLAY_OUTPUT_KIND_WAIT && out.wait_until_us == 10 + 500 * 1000);
    /* Nobody answers: after the retries the join fails and the node is idle again. */
    overlay_chord_event ev;
    int got = 0;
    for (uint64_t t = 0; t <= 5 && got == 0; t++) {
        got = chord_drain(h, 10 + t * 600 * 1000, OVERLAY_CHORD_EVENT_KIND_FAILED, &ev, NULL, NULL,
                          NULL);
    }
    CHECK(got == 1 && ev.query == join && ev.error == OVERLAY_RESULT_UNREACHABLE);
    CHECK_RC(overlay_chord_status(h, &st), OVERLAY_RESULT_OK);
    CHECK(st.phase == OVERLAY_CHORD_PHASE_IDLE && st.timeouts >= 1);

    /* A ring of one owns every key: put and get complete without a datagram. */
    uint64_t now = 10 * 1000 * 1000;
    CHECK_RC(overlay_chord_create(h, now), OVERLAY_RESULT_OK);
    CHECK_RC(overlay_chord_create(h, now), OVERLAY_RESULT_ALREADY_MEMBER);
    CHECK_RC(overlay_chord_client(h, &other), OVERLAY_RESULT_ALREADY_MEMBER);
    uint8_t value[OVERLAY_CHORD_MAX_VALUE + 1];
    for (size_t i = 0; i < sizeof value; i++) value[i] = (uint8_t)i;
    CHECK_RC(overlay_chord_put(h, now, (const uint8_t *)"big", 3, value, sizeof value, &q),
             OVERLAY_RESULT_VALUE_TOO_LARGE);
    CHECK_RC(overlay_chord_put(h, now, NULL, 3, value, 10, &q), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_chord_put(h, now, (const uint8_t *)"k", 1, NULL, 10, &q),
             OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_chord_put(h, now, (const uint8_t *)"k", 1, value, 10, NULL),
             OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_chord_put(h, now, (const uint8_t *)"alice", 5, value, 300, &q),
             OVERLAY_RESULT_OK);
    uint64_t put = q;
    got = chord_drain(h, now, OVERLAY_CHORD_EVENT_KIND_PUT_DONE, &ev, NULL, NULL, NULL);
    CHECK(got == 1 && ev.query == put && memcmp(&ev.node.addr, &me, sizeof me) == 0);

    CHECK_RC(overlay_chord_get(h, now, (const uint8_t *)"alice", 5, &q), OVERLAY_RESULT_OK);
    uint64_t get = q;
    /* The event's value does not fit 100 bytes: refused, kept, then delivered whole. */
    overlay_chord_output small;
    int refused = 0;
    for (int i = 0; i < 100; i++) {
        overlay_result rc = overlay_chord_poll_output(h, now, buf, 100, &small);
        if (rc == OVERLAY_RESULT_BUFFER_TOO_SMALL) {
            refused = 1;
            CHECK(small.len == 300 && small.kind == OVERLAY_OUTPUT_KIND_NONE);
            break;
        }
        if (rc != OVERLAY_RESULT_OK || small.kind == OVERLAY_OUTPUT_KIND_WAIT) break;
    }
    CHECK(refused);
    uint8_t data[OVERLAY_CHORD_OUTPUT_CAP];
    size_t data_len = 0;
    got = chord_drain(h, now, OVERLAY_CHORD_EVENT_KIND_GET_DONE, &ev, data, &data_len, NULL);
    CHECK(got == 1 && ev.query == get && ev.found && data_len == 300);
    CHECK(memcmp(data, value, 300) == 0);
    CHECK_RC(overlay_chord_get(h, now, (const uint8_t *)"bob", 3, &q), OVERLAY_RESULT_OK);
    got = chord_drain(h, now, OVERLAY_CHORD_EVENT_KIND_GET_DONE, &ev, data, &data_len, NULL);
    CHECK(got == 1 && ev.query == q && !ev.found && data_len == 0);
    CHECK_RC(overlay_chord_lookup(h, now, NULL, 0, &q), OVERLAY_RESULT_OK); /* the empty key */
    got = chord_drain(h, now, OVERLAY_CHORD_EVENT_KIND_LOOKUP_DONE, &ev, NULL, NULL, NULL);
    CHECK(got == 1 && ev.query == q);

    /* Malformed datagrams are dropped and counted, never an error. */
    CHECK_RC(overlay_chord_handle_datagram(h, now, &other, (const uint8_t *)"\x01garbage", 8),
             OVERLAY_RESULT_OK);
    CHECK_RC(overlay_chord_handle_datagram(h, now, &other, NULL, 0), OVERLAY_RESULT_OK);
    CHECK_RC(overlay_chord_handle_datagram(h, now, &other, NULL, 5), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_chord_handle_datagram(h, now, NULL, buf, 5), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_chord_handle_datagram(h, now, &bad, buf, 5), OVERLAY_RESULT_INVALID_ARGUMENT);
    CHECK_RC(overlay_chord_status(h, &st), OVERLAY_RESULT_OK);
    CHECK(st.phase == OVERLAY_CHORD_PHASE_MEMBER && st.keys == 1);
    CHECK(st.received == 2 && st.malformed + st.wrong_version == 2);

    /* Leaving: a ring of one has nobody to hand keys to, and says it left. */
    CHECK_RC(overlay_chord_leave(h, now), OVERLAY_RESULT_OK);
    got = chord_drain(h, now, OVERLAY_CHORD_EVENT_KIND_LEFT, &ev, NULL, NULL, NULL);
    CHECK(got == 1);
    CHECK_RC(overlay_chord_status(h, &st), OVERLAY_RESULT_OK);
    CHECK(st.phase == OVERLAY_CHORD_PHASE_LEFT);
    overlay_chord_free(h);

    /* A client routes through its contact without joining. */
    CHECK_RC(overlay_chord_new(&config, &me, 2, &h), OVERLAY_RESULT_OK);
    CHECK_RC(overlay_chord_client(h, &other), OVERLAY_RESULT_OK);
    CHECK_RC(overlay_chord_get(h, 0, (const uint8_t *)"k", 1, &q), OVERLAY_RESULT_OK);
    int transmits = 0;
    chord_drain(h, 0, OVERLAY_CHORD_EVENT_KIND_NONE, &ev, NULL, NULL, &transmits);
    CHECK(transmits == 1);
    CHECK_RC(overlay_chord_status(h, &st), OVERLAY_RESULT_OK);
    CHECK(st.phase == OVERLAY_CHORD_PHASE_CLIENT);
    overlay_chord_free(h);
}

static int dht_drain(overlay_dht *h, uint64_t now, overlay_dht_event_kind kind,
                     overlay_dht_event *event, uint8_t *data, size_t *data_len, int *transmits) {
    uint8_t buf[OVERLAY_DHT_OUTPUT_CAP];
    int found = 0;
    for (int i = 0; i < 1000; i++) {
        overlay_dht_output out;
        if (overlay_dht_poll_output(h, now, buf, sizeof buf, &out) != OVERLAY_RESULT_OK) {
            return -1;
        }
        if (out.kind == OVERLAY_OUTPUT_KIND_WAIT) {
            return found;
        }
        if (out.kind == OVERLAY_OUTPUT_KIND_TRANSMIT && transmits) {
            (*transmits)++;
        }
        if (out.kind == OVERLAY_OUTPUT_KIND_EVENT && out.event.kind == kind && !found) {
            found = 1;
            *event = out.event;
            if (data) {
                memcpy(data, buf, out.len);
                *data_len = out.len;
            }
        }
    }
    return -1;
}

static void test_dht(void) {
    overlay_dht_config config;
    CHECK_RC(overlay_dht_config_default(&config), OVERLAY_RESULT_OK);
    CHECK(config.k == 8 && config.alpha == 3 && config.restrict_ips && !config.read_only);
    CHECK_RC(overlay_dht_config_default(NULL), OVERLAY_RESULT_NULL_ARGUMENT);
    config.restrict_ips = false;

    overlay_addr me = v4(127, 0, 0, 1, 6881), other = v4(127, 0, 0, 1, 6882);
    overlay_dht *h = NULL;
    CHECK_RC(overlay_dht_new(NULL, &me, 1, &h), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_dht_new(&config, NULL, 1, &h), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_dht_new(&config, &me, 1, NULL), OVERLAY_RESULT_NULL_ARGUMENT);
    overlay_addr bad = me;
    bad.family = 7;
    CHECK_RC(overlay_dht_new(&config, &bad, 1, &h), OVERLAY_RESULT_INVALID_ARGUMENT);
    CHECK(h == NULL);
    overlay_dht_free(NULL);

    uint64_t q = 0;
    overlay_id id, target;
    memset(&id, 0x33, sizeof id);
    uint8_t buf[OVERLAY_DHT_OUTPUT_CAP];
    overlay_dht_output out;
    overlay_dht_snapshot st;
    CHECK_RC(overlay_dht_handle_datagram(NULL, 0, &other, buf, 1), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_dht_poll_output(NULL, 0, buf, sizeof buf, &out), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_dht_bootstrap(NULL, 0, &other, 1, &q), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_dht_find_node(NULL, 0, &id, &q), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_dht_get_peers(NULL, 0, &id, &q), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_dht_announce(NULL, 0, &id, 1, &q), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_dht_get(NULL, 0, &id, &q), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_dht_put(NULL, 0, (const uint8_t *)"1:a", 3, &q, &target),
             OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_dht_status(NULL, &st), OVERLAY_RESULT_NULL_ARGUMENT);

    CHECK_RC(overlay_dht_new(&config, &me, 1, &h), OVERLAY_RESULT_OK);
    REQUIRE(h != NULL);
    CHECK_RC(overlay_dht_status(h, &st), OVERLAY_RESULT_OK);
    CHECK(st.table_nodes == 0 && st.lookups == 0 && st.node.addr.port == 6881);
    CHECK_RC(overlay_dht_status(h, NULL), OVERLAY_RESULT_NULL_ARGUMENT);

    /* Refused before anything starts. */
    CHECK_RC(overlay_dht_bootstrap(h, 0, NULL, 0, &q), OVERLAY_RESULT_NO_NODES);
    CHECK_RC(overlay_dht_bootstrap(h, 0, NULL, 2, &q), OVERLAY_RESULT_NULL_ARGUMENT);
    overlay_addr list[2] = {other, bad};
    CHECK_RC(overlay_dht_bootstrap(h, 0, list, 2, &q), OVERLAY_RESULT_INVALID_ARGUMENT);
    CHECK_RC(overlay_dht_bootstrap(h, 0, list, 1, NULL), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_dht_find_node(h, 0, NULL, &q), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_dht_get_peers(h, 0, &id, NULL), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_dht_announce(h, 0, NULL, 1, &q), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_dht_get(h, 0, NULL, &q), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_dht_put(h, 0, (const uint8_t *)"hello", 5, &q, &target),
             OVERLAY_RESULT_BAD_ITEM); /* not bencoded */
    uint8_t huge[1100];
    memset(huge, 'a', sizeof huge);
    memcpy(huge, "1096:", 5);
    CHECK_RC(overlay_dht_put(h, 0, huge, sizeof huge, &q, &target), OVERLAY_RESULT_BAD_ITEM);
    CHECK_RC(overlay_dht_put(h, 0, (const uint8_t *)"1:a", 3, &q, NULL),
             OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_dht_put(h, 0, (const uint8_t *)"1:a", 3, NULL, &target),
             OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_dht_put(h, 0, NULL, 3, &q, &target), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_dht_status(h, &st), OVERLAY_RESULT_OK);
    CHECK(st.lookups == 0 && st.stored_items == 0); /* nothing started */

    /* With an empty table, a lookup starts and fails at once. */
    CHECK_RC(overlay_dht_get_peers(h, 0, &id, &q), OVERLAY_RESULT_OK);
    overlay_dht_event ev;
    int got = dht_drain(h, 0, OVERLAY_DHT_EVENT_KIND_FAILED, &ev, NULL, NULL, NULL);
    CHECK(got == 1 && ev.query == q && ev.error == OVERLAY_RESULT_NO_NODES);

    /* A put stores the item in our own store first; a get of it finds it there. */
    CHECK_RC(overlay_dht_put(h, 0, (const uint8_t *)"12:Hello World!", 15, &q, &target),
             OVERLAY_RESULT_OK);
    char hex[41];
    overlay_id_format_hex(&target, hex, sizeof hex, NULL);
    CHECK(strcmp(hex, "e5f96f6f38320f0f33959cb4d3d656452117aadb") == 0); /* BEP 44's vector */
    got = dht_drain(h, 0, OVERLAY_DHT_EVENT_KIND_FAILED, &ev, NULL, NULL, NULL);
    CHECK(got == 1 && ev.query == q && ev.error == OVERLAY_RESULT_NO_NODES);
    CHECK_RC(overlay_dht_status(h, &st), OVERLAY_RESULT_OK);
    CHECK(st.stored_items == 1);

    /* Bootstrapping sends find_node to the address; a short buffer changes nothing. */
    CHECK_RC(overlay_dht_bootstrap(h, 0, list, 1, &q), OVERLAY_RESULT_OK);
    CHECK_RC(overlay_dht_poll_output(h, 0, buf, 8, &out), OVERLAY_RESULT_BUFFER_TOO_SMALL);
    size_t needed = out.len;
    CHECK(out.kind == OVERLAY_OUTPUT_KIND_NONE && needed > 8);
    CHECK_RC(overlay_dht_poll_output(h, 0, buf, needed, &out), OVERLAY_RESULT_OK);
    CHECK(out.kind == OVERLAY_OUTPUT_KIND_TRANSMIT && out.len == needed);
    CHECK(memcmp(&out.addr, &other, sizeof other) == 0);
    CHECK(memcmp(buf, "d1:ad2:id20:", 12) == 0); /* KRPC */
    CHECK_RC(overlay_dht_poll_output(h, 0, buf, sizeof buf, &out), OVERLAY_RESULT_OK);
    CHECK(out.kind == OVERLAY_OUTPUT_KIND_WAIT && out.wait_until_us != OVERLAY_NO_DEADLINE);
    /* Still bootstrapping through the same addresses: count 0 reuses them. */
    uint64_t again = 0;
    CHECK_RC(overlay_dht_bootstrap(h, 0, NULL, 0, &again), OVERLAY_RESULT_OK);
    CHECK(again != q);

    /* Malformed datagrams are dropped and counted (a KRPC error goes back for a query). */
    CHECK_RC(overlay_dht_handle_datagram(h, 1, &other, (const uint8_t *)"garbage", 7),
             OVERLAY_RESULT_OK);
    CHECK_RC(overlay_dht_handle_datagram(h, 1, &other, (const uint8_t *)"d1:y1:qe", 8),
             OVERLAY_RESULT_OK);
    CHECK_RC(overlay_dht_handle_datagram(h, 1, &other, NULL, 3), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_dht_handle_datagram(h, 1, NULL, buf, 3), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_dht_handle_datagram(h, 1, &bad, buf, 3), OVERLAY_RESULT_INVALID_ARGUMENT);
    CHECK_RC(overlay_dht_status(h, &st), OVERLAY_RESULT_OK);
    CHECK(st.received == 2 && st.malformed == 2);

    /* Lookups fill up: the next command is BUSY, and changes nothing. */
    int started = 0;
    overlay_result rc = OVERLAY_RESULT_OK;
    for (int i = 0; i < 100 && rc == OVERLAY_RESULT_OK; i++) {
        rc = overlay_dht_find_node(h, 1, &id, &q);
        started += rc == OVERLAY_RESULT_OK;
    }
    CHECK(rc == OVERLAY_RESULT_BUSY && started > 0 && started < 100);
    CHECK_RC(overlay_dht_announce(h, 1, &id, 6881, &q), OVERLAY_RESULT_BUSY);
    CHECK_RC(overlay_dht_get(h, 1, &id, &q), OVERLAY_RESULT_BUSY);
    /* Each of them failed at once (the table is still empty) and says so. */
    int failed = 0;
    for (int i = 0; i < 1000; i++) {
        CHECK_RC(overlay_dht_poll_output(h, 1, buf, sizeof buf, &out), OVERLAY_RESULT_OK);
        if (out.kind == OVERLAY_OUTPUT_KIND_WAIT) break;
        failed += out.kind == OVERLAY_OUTPUT_KIND_EVENT &&
                  out.event.kind == OVERLAY_DHT_EVENT_KIND_FAILED &&
                  out.event.error == OVERLAY_RESULT_NO_NODES;
    }
    CHECK(failed == started);
    CHECK_RC(overlay_dht_find_node(h, 1, &id, &q), OVERLAY_RESULT_OK);

    overlay_dht_free(h);
}

static void test_gnutella(void) {
    overlay_addr me = v4(10, 0, 0, 1, 6346), other = v4(10, 0, 0, 2, 6346);
    overlay_addr bad = me;
    bad.family = 9;
    overlay_gnutella_config config;
    CHECK_RC(overlay_gnutella_config_default(OVERLAY_GNUTELLA_ROLE_LEAF, &me, &config),
             OVERLAY_RESULT_OK);
    CHECK(config.role == OVERLAY_GNUTELLA_ROLE_LEAF && config.max_peers == 3);
    CHECK(config.max_leaves == 0 && config.listen.port == 6346);
    CHECK_RC(overlay_gnutella_config_default(OVERLAY_GNUTELLA_ROLE_ULTRAPEER, &me, &config),
             OVERLAY_RESULT_OK);
    CHECK(config.role == OVERLAY_GNUTELLA_ROLE_ULTRAPEER && config.max_leaves == 30);
    CHECK_RC(overlay_gnutella_config_default(7, &me, &config), OVERLAY_RESULT_INVALID_ARGUMENT);
    CHECK_RC(overlay_gnutella_config_default(0, NULL, &config), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_gnutella_config_default(0, &bad, &config), OVERLAY_RESULT_INVALID_ARGUMENT);
    CHECK_RC(overlay_gnutella_config_default(0, &me, NULL), OVERLAY_RESULT_NULL_ARGUMENT);

    overlay_gnutella *h = NULL;
    overlay_gnutella_config wrong = config;
    wrong.role = 2;
    CHECK_RC(overlay_gnutella_new(&wrong, 1, &h), OVERLAY_RESULT_INVALID_ARGUMENT);
    wrong = config;
    wrong.listen = bad;
    CHECK_RC(overlay_gnutella_new(&wrong, 1, &h), OVERLAY_RESULT_INVALID_ARGUMENT);
    CHECK_RC(overlay_gnutella_new(NULL, 1, &h), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_gnutella_new(&config, 1, NULL), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK(h == NULL);
    overlay_gnutella_free(NULL);

    uint64_t conn = 0, q = 0;
    uint8_t buf[OVERLAY_GNUTELLA_OUTPUT_CAP];
    overlay_gnutella_output out;
    overlay_gnutella_snapshot st;
    overlay_gnutella_file file = {0};
    CHECK_RC(overlay_gnutella_share(NULL, 0, &file, 1), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_gnutella_handle_accepted(NULL, 0, OVERLAY_CONN_INBOUND, &other),
             OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_gnutella_handle_connected(NULL, 0, 0), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_gnutella_handle_received(NULL, 0, 0, buf, 1), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_gnutella_handle_closed(NULL, 0, 0), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_gnutella_poll_output(NULL, 0, buf, sizeof buf, &out),
             OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_gnutella_connect(NULL, 0, &other, &conn), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_gnutella_disconnect(NULL, 0, 0), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_gnutella_search(NULL, 0, (const uint8_t *)"x", 1, NULL, &q),
             OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_gnutella_upload(NULL, 0, 0, buf, 1), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_gnutella_status(NULL, &st), OVERLAY_RESULT_NULL_ARGUMENT);

    CHECK_RC(overlay_gnutella_new(&config, 1, &h), OVERLAY_RESULT_OK);
    REQUIRE(h != NULL);
    CHECK_RC(overlay_gnutella_status(h, &st), OVERLAY_RESULT_OK);
    CHECK(st.role == OVERLAY_GNUTELLA_ROLE_ULTRAPEER && st.peers == 0 && st.shared_files == 0);
    CHECK_RC(overlay_gnutella_status(h, NULL), OVERLAY_RESULT_NULL_ARGUMENT);

    /* Sharing: every entry is checked before the list is replaced. */
    overlay_gnutella_file files[2] = {
        {.index = 0, .size = 30, .name = (const uint8_t *)"free software song.ogg",
         .name_len = 22, .has_sha1 = true},
        {.index = 1, .size = 5, .name = NULL, .name_len = 10},
    };
    CHECK_RC(overlay_gnutella_share(h, 0, files, 2), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_gnutella_share(h, 0, NULL, 2), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_gnutella_status(h, &st), OVERLAY_RESULT_OK);
    CHECK(st.shared_files == 0);
    files[1].name = (const uint8_t *)"readme.txt";
    CHECK_RC(overlay_gnutella_share(h, 0, files, 2), OVERLAY_RESULT_OK);
    CHECK_RC(overlay_gnutella_status(h, &st), OVERLAY_RESULT_OK);
    CHECK(st.shared_files == 2);
    CHECK_RC(overlay_gnutella_share(h, 0, NULL, 0), OVERLAY_RESULT_OK); /* shares nothing */
    CHECK_RC(overlay_gnutella_status(h, &st), OVERLAY_RESULT_OK);
    CHECK(st.shared_files == 0);

    /* Commands refused while nothing is connected, or for arguments that cannot be sent. */
    CHECK_RC(overlay_gnutella_search(h, 0, (const uint8_t *)"free song", 9, NULL, &q),
             OVERLAY_RESULT_NOT_CONNECTED);
    CHECK_RC(overlay_gnutella_search(h, 0, (const uint8_t *)"a\0b", 3, NULL, &q),
             OVERLAY_RESULT_INVALID_ARGUMENT);
    CHECK_RC(overlay_gnutella_search(h, 0, (const uint8_t *)"x", 1, NULL, NULL),
             OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_gnutella_search(h, 0, NULL, 1, NULL, &q), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_gnutella_upload(h, 0, 5, (const uint8_t *)"x", 1), OVERLAY_RESULT_NO_UPLOAD);
    CHECK_RC(overlay_gnutella_upload(h, 0, 5, NULL, 1), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_gnutella_disconnect(h, 0, 12345), OVERLAY_RESULT_OK); /* unknown: ignored */
    CHECK_RC(overlay_gnutella_connect(h, 0, NULL, &conn), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_gnutella_connect(h, 0, &other, NULL), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_gnutella_connect(h, 0, &bad, &conn), OVERLAY_RESULT_INVALID_ARGUMENT);
    CHECK_RC(overlay_gnutella_handle_accepted(h, 0, 3, &other), OVERLAY_RESULT_INVALID_ARGUMENT);
    CHECK_RC(overlay_gnutella_handle_accepted(h, 0, OVERLAY_CONN_INBOUND, NULL),
             OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_gnutella_handle_received(h, 0, 0, NULL, 4), OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_gnutella_poll_output(h, 0, buf, sizeof buf, NULL),
             OVERLAY_RESULT_NULL_ARGUMENT);
    CHECK_RC(overlay_gnutella_poll_output(h, 0, buf, sizeof buf, &out), OVERLAY_RESULT_OK);
    CHECK(out.kind == OVERLAY_OUTPUT_KIND_WAIT);

    /* Dialling: CONNECT names the connection; once connected, the handshake goes out on
       it, and a buffer too small for it changes nothing. */
    CHECK_RC(overlay_gnutella_connect(h, 0, &other, &conn), OVERLAY_RESULT_OK);
    CHECK(!(conn & OVERLAY_CONN_INBOUND));
    CHECK_RC(overlay_gnutella_poll_output(h, 0, buf, sizeof buf, &out), OVERLAY_RESULT_OK);
    CHECK(out.kind == OVERLAY_OUTPUT_KIND_CONNECT && out.conn == conn && out.len == 0);
    CHECK(memcmp(&out.addr, &other, sizeof other) == 0);
    CHECK_RC(overlay_gnutella_poll_output(h, 0, buf, sizeof buf, &out), OVERLAY_RESULT_OK);
    CHECK(out.kind == OVERLAY_OUTPUT_KIND_WAIT); /* dialling is the caller's to time out */
    CHECK_RC(overlay_gnutella_handle_connected(h, 1, conn), OVERLAY_RESULT_OK);
    memset(buf, 0xab, 16);
    CHECK_RC(overlay_gnutella_poll_output(h, 1, buf, 16, &out), OVERLAY_RESULT_BUFFER_TOO_SMALL);
    size_t needed = out.len;
    CHECK(out.kind == OVERLAY_OUTPUT_KIND_NONE && needed > 16 && buf[0] == 0xab);
    CHECK_RC(overlay_gnutella_poll_output(h, 1, buf, sizeof buf, &out), OVERLAY_RESULT_OK);
    CHECK(out.kind == OVERLAY_OUTPUT_KIND_TRANSMIT && out.conn == conn && out.len == needed);
    CHECK(out.addr.family == 0);
    CHECK(memcmp(buf, "GNUTELLA CONNECT/0.6\r\n", 22) == 0);
    CHECK_RC(overlay_gnutella_poll_output(h, 1, buf, sizeof buf, &out), OVERLAY_RESULT_OK);
    CHECK(out.kind == OVERLAY_OUTPUT_KIND_WAIT && out.wait_until_us == 1 + 20 * 1000000ull);

    /* Garbage instead of a handshake answer: the servent closes the connection. */
    CHECK_RC(overlay_gnutella_handle_received(h, 2, conn, (const uint8_t *)"garbage\r\n\r\n", 11),
             OVERLAY_RESULT_OK);
    int closed = 0, closed_event = 0;
    for (int i = 0; i < 100; i++) {
        CHECK_RC(overlay_gnutella_poll_output(h, 2, buf, sizeof buf, &out), OVERLAY_RESULT_OK);
        if (out.kind == OVERLAY_OUTPUT_KIND_WAIT) break;
        closed += out.kind == OVERLAY_OUTPUT_KIND_CLOSE && out.conn == conn;
        closed_event += out.kind == OVERLAY_OUTPUT_KIND_EVENT &&
                        out.event.kind == OVERLAY_GNUTELLA_EVENT_KIND_CLOSED &&
                        out.event.conn == conn &&
                        out.event.close_reason == OVERLAY_GNUTELLA_CLOSE_REASON_PROTOCOL;
    }
    CHECK(closed == 1 && closed_event == 1);

    /* A dial that fails is reported with handle_closed. */
    CHECK_RC(overlay_gnutella_connect(h, 3, &other, &conn), OVERLAY_RESULT_OK);
    CHECK_RC(overlay_gnutella_handle_closed(h, 3, conn), OVERLAY_RESULT_OK);
    closed_event = 0;
    for (int i = 0; i < 100; i++) {
        CHECK_RC(overlay_gnutella_poll_output(h, 3, buf, sizeof buf, &out), OVERLAY_RESULT_OK);
        if (out.kind == OVERLAY_OUTPUT_KIND_WAIT) break;
        closed_event += out.kind == OVERLAY_OUTPUT_KIND_EVENT &&
                        out.event.kind == OVERLAY_GNUTELLA_EVENT_KIND_CLOSED &&
                        out.event.conn == conn;
    }
    CHECK(closed_event == 1);

    /* Connection slots run out. */
    overlay_result rc = OVERLAY_RESULT_OK;
    int dialled = 0;
    for (int i = 0; i < 100 && rc == OVERLAY_RESULT_OK; i++) {
        rc = overlay_gnutella_connect(h, 4, &other, &conn);
        dialled += rc == OVERLAY_RESULT_OK;
    }
    CHECK(rc == OVERLAY_RESULT_FULL && dialled == OVERLAY_GNUTELLA_LINKS);
    overlay_gnutella_free(h);
}

int main(void) {
    test_result_messages();
    test_addresses_and_ids();
    test_chord();
    test_dht();
    test_gnutella();
    return check_summary("api");
}
