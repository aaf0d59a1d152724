/* Networks of handles in one process: a Chord ring of 8 nodes and a Mainline DHT of 12,
   exchanging datagrams through an in-memory loop with a virtual clock (1 ms per hop), and
   three Gnutella servents over in-memory streams. Checks what each protocol promises: the
   ring's successors are right, every key put is got back from another node, and survives
   a graceful leave; DHT nodes bootstrap, find each other, and find announced peers and
   BEP 44 items put elsewhere; a leaf's search reaches another leaf through their
   ultrapeer, and the file it found downloads over HTTP. */
#include "overlay.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define MAX_NODES 16
#define MAX_IN_FLIGHT 4096
#define LATENCY_US 1000

/* ---- the in-memory network: a queue of datagrams and a clock ---- */

typedef struct {
    uint64_t at;
    overlay_addr from, to;
    size_t len;
    uint8_t bytes[OVERLAY_DHT_OUTPUT_CAP];
} datagram;

typedef struct net net;

/* What a protocol plugs in: drain node `i` at `now` (sending with net_send, handling
   events), and hand it a datagram. */
typedef struct {
    void (*drain)(net *n, int i);
    void (*deliver)(net *n, int i, const datagram *d);
} protocol;

struct net {
    const protocol *proto;
    void *nodes[MAX_NODES];
    overlay_addr addrs[MAX_NODES];
    uint64_t deadline[MAX_NODES];
    int count;
    uint64_t now;
    datagram *queue; /* MAX_IN_FLIGHT slots, `len == SIZE_MAX` when free */
    int queued;
    uint64_t delivered, dropped;
};

static overlay_addr node_addr(int i) {
    overlay_addr a;
    memset(&a, 0, sizeof a);
    a.family = OVERLAY_IPV4;
    a.ip[0] = 10;
    a.ip[3] = (uint8_t)(i + 1);
    a.port = 4000;
    return a;
}

static int node_of(const net *n, const overlay_addr *a) {
    for (int i = 0; i < n->count; i++) {
        if (memcmp(&n->addrs[i], a, sizeof *a) == 0) return i;
    }
    return -1;
}

static void net_init(net *n, const protocol *proto) {
    memset(n, 0, sizeof *n);
    n->proto = proto;
    n->queue = malloc(MAX_IN_FLIGHT * sizeof(datagram));
    REQUIRE(n->queue != NULL);
    for (int i = 0; i < MAX_IN_FLIGHT; i++) n->queue[i].len = SIZE_MAX;
}

static void net_send(net *n, int from, const overlay_addr *to, const uint8_t *bytes, size_t len) {
    if (n->queued == MAX_IN_FLIGHT || len > OVERLAY_DHT_OUTPUT_CAP) {
        n->dropped++;
        return;
    }
    for (int s = 0; s < MAX_IN_FLIGHT; s++) {
        if (n->queue[s].len == SIZE_MAX) {
            datagram *d = &n->queue[s];
            d->at = n->now + LATENCY_US;
            d->from = n->addrs[from];
            d->to = *to;
            d->len = len;
            memcpy(d->bytes, bytes, len);
            n->queued++;
            return;
        }
    }
}

/* Advances the clock to the next delivery or timer (at most to `until`), delivers what is
   due, and drains every node that got input or whose timer passed. Returns 0 once `until`
   is reached. */
static int net_step(net *n, uint64_t until) {
    uint64_t next = until;
    for (int s = 0; s < MAX_IN_FLIGHT && n->queued > 0; s++) {
        if (n->queue[s].len != SIZE_MAX && n->queue[s].at < next) next = n->queue[s].at;
    }
    for (int i = 0; i < n->count; i++) {
        if (n->deadline[i] < next) next = n->deadline[i];
    }
    if (next > n->now) n->now = next;
    int woke[MAX_NODES] = {0};
    for (int s = 0; s < MAX_IN_FLIGHT && n->queued > 0; s++) {
        datagram *d = &n->queue[s];
        if (d->len == SIZE_MAX || d->at > n->now) continue;
        int to = node_of(n, &d->to);
        if (to >= 0) {
            n->proto->deliver(n, to, d);
            woke[to] = 1;
            n->delivered++;
        }
        d->len = SIZE_MAX;
        n->queued--;
    }
    for (int i = 0; i < n->count; i++) {
        if (woke[i] || n->deadline[i] <= n->now) n->proto->drain(n, i);
    }
    return n->now < until;
}

/* Runs until `done(n)` or `until`; returns whether `done` came true. */
static int net_run(net *n, uint64_t until, int (*done)(net *)) {
    while (!(done && done(n))) {
        if (!net_step(n, until)) return done ? done(n) : 1;
    }
    return 1;
}

/* ---- Chord ---- */

#define CHORD_NODES 8
#define KEYS 16

static struct {
    int joined, put_done, get_done, get_found, get_right, left;
    uint64_t get_query[KEYS];
    int get_node[KEYS]; /* query ids are per node: a get is its node and its id */
    int key_of_get[KEYS];
} chord;

static void key_value(int k, char *key, uint8_t *value, size_t *value_len) {
    sprintf(key, "key-%d", k);
    *value_len = (size_t)(10 + k * 37);
    for (size_t i = 0; i < *value_len; i++) value[i] = (uint8_t)(k * 7 + i);
}

static void chord_drain(net *n, int i) {
    uint8_t buf[OVERLAY_CHORD_OUTPUT_CAP];
    for (;;) {
        overlay_chord_output out;
        overlay_result rc = overlay_chord_poll_output(n->nodes[i], n->now, buf, sizeof buf, &out);
        REQUIRE(rc == OVERLAY_RESULT_OK);
        if (out.kind == OVERLAY_OUTPUT_KIND_WAIT) {
            n->deadline[i] = out.wait_until_us;
            return;
        }
        if (out.kind == OVERLAY_OUTPUT_KIND_TRANSMIT) {
            net_send(n, i, &out.addr, buf, out.len);
        } else if (out.kind == OVERLAY_OUTPUT_KIND_EVENT) {
            const overlay_chord_event *e = &out.event;
            switch (e->kind) {
            case OVERLAY_CHORD_EVENT_KIND_JOINED: chord.joined++; break;
            case OVERLAY_CHORD_EVENT_KIND_PUT_DONE: chord.put_done++; break;
            case OVERLAY_CHORD_EVENT_KIND_LEFT: chord.left++; break;
            case OVERLAY_CHORD_EVENT_KIND_GET_DONE:
                for (int k = 0; k < KEYS; k++) {
                    if (chord.get_node[k] != i || chord.get_query[k] != e->query ||
                        chord.key_of_get[k] < 0) {
                        continue;
                    }
                    char key[32];
                    uint8_t value[OVERLAY_CHORD_MAX_VALUE];
                    size_t len;
                    key_value(chord.key_of_get[k], key, value, &len);
                    chord.get_done++;
                    chord.get_found += e->found;
                    chord.get_right += e->found && out.len == len && memcmp(buf, value, len) == 0;
                    chord.key_of_get[k] = -1;
                }
                break;
            case OVERLAY_CHORD_EVENT_KIND_FAILED:
                fprintf(stderr, "chord node %d: command %llu failed (%u)\n", i,
                        (unsigned long long)e->query, (unsigned)e->error);
                break;
            default: break;
            }
        }
    }
}

static void chord_deliver(net *n, int i, const datagram *d) {
    REQUIRE(overlay_chord_handle_datagram(n->nodes[i], n->now, &d->from, d->bytes, d->len) ==
            OVERLAY_RESULT_OK);
}

static const protocol chord_protocol = {chord_drain, chord_deliver};

static int all_joined(net *n) { return chord.joined == n->count - 1; }
static int all_put(net *n) { (void)n; return chord.put_done == KEYS; }
static int all_got(net *n) { (void)n; return chord.get_done == KEYS; }
static int has_left(net *n) { (void)n; return chord.left == 1; }

/* Each live node's successor is the next live node in id order. */
static int ring_correct(net *n, int skip) {
    overlay_chord_snapshot s[MAX_NODES];
    for (int i = 0; i < n->count; i++) {
        if (i == skip) continue;
        REQUIRE(overlay_chord_status(n->nodes[i], &s[i]) == OVERLAY_RESULT_OK);
    }
    for (int i = 0; i < n->count; i++) {
        if (i == skip) continue;
        int best = -1, lowest = -1;
        for (int j = 0; j < n->count; j++) {
            if (j == i || j == skip) continue;
            int after = memcmp(&s[j].node.id, &s[i].node.id, 20) > 0;
            if (after && (best < 0 || memcmp(&s[j].node.id, &s[best].node.id, 20) < 0)) best = j;
            if (lowest < 0 || memcmp(&s[j].node.id, &s[lowest].node.id, 20) < 0) lowest = j;
        }
        int want = best >= 0 ? best : lowest;
        if (s[i].phase != OVERLAY_CHORD_PHASE_MEMBER || s[i].successors == 0 ||
            memcmp(&s[i].successor, &s[want].node, sizeof s[i].successor) != 0) {
            return 0;
        }
    }
    return 1;
}

static void get_all(net *n, int skip) {
    chord.get_done = chord.get_found = chord.get_right = 0;
    for (int k = 0; k < KEYS; k++) {
        char key[32];
        uint8_t value[OVERLAY_CHORD_MAX_VALUE];
        size_t len;
        key_value(k, key, value, &len);
        int via = (k * 3 + 1) % n->count;
        if (via == skip) via = (via + 1) % n->count;
        chord.key_of_get[k] = k;
        chord.get_node[k] = via;
        CHECK_RC(overlay_chord_get(n->nodes[via], n->now, (const uint8_t *)key, strlen(key),
                                   &chord.get_query[k]),
                 OVERLAY_RESULT_OK);
        chord_drain(n, via);
    }
}

static void test_chord_ring(void) {
    net n;
    net_init(&n, &chord_protocol);
    overlay_chord_config config;
    overlay_chord_config_default(&config);
    config.stabilize_interval_ms = 200;
    config.fix_fingers_interval_ms = 200;
    config.check_predecessor_interval_ms = 200;
    n.count = CHORD_NODES;
    for (int i = 0; i < n.count; i++) {
        n.addrs[i] = node_addr(i);
        REQUIRE(overlay_chord_new(&config, &n.addrs[i], (uint64_t)i + 1,
                                  (overlay_chord **)&n.nodes[i]) == OVERLAY_RESULT_OK);
        n.deadline[i] = OVERLAY_NO_DEADLINE;
    }
    CHECK_RC(overlay_chord_create(n.nodes[0], 0), OVERLAY_RESULT_OK);
    chord_drain(&n, 0);
    for (int i = 1; i < n.count; i++) {
        uint64_t q;
        CHECK_RC(overlay_chord_join(n.nodes[i], 0, &n.addrs[0], &q), OVERLAY_RESULT_OK);
        chord_drain(&n, i);
    }
    CHECK(net_run(&n, 30 * 1000000ull, all_joined));
    /* Stabilization puts every successor right within a few rounds. */
    net_run(&n, n.now + 20 * 1000000ull, NULL);
    CHECK(ring_correct(&n, -1));

    for (int k = 0; k < KEYS; k++) {
        char key[32];
        uint8_t value[OVERLAY_CHORD_MAX_VALUE];
        size_t len;
        uint64_t q;
        key_value(k, key, value, &len);
        CHECK_RC(overlay_chord_put(n.nodes[k % n.count], n.now, (const uint8_t *)key, strlen(key),
                                   value, len, &q),
                 OVERLAY_RESULT_OK);
        chord_drain(&n, k % n.count);
    }
    CHECK(net_run(&n, n.now + 10 * 1000000ull, all_put));
    get_all(&n, -1);
    CHECK(net_run(&n, n.now + 10 * 1000000ull, all_got));
    CHECK(chord.get_found == KEYS && chord.get_right == KEYS);

    /* Node 3 leaves gracefully: its keys move on, the ring closes over it. */
    int leaving = 3;
    CHECK_RC(overlay_chord_leave(n.nodes[leaving], n.now), OVERLAY_RESULT_OK);
    chord_drain(&n, leaving);
    CHECK(net_run(&n, n.now + 5 * 1000000ull, has_left));
    overlay_chord_free(n.nodes[leaving]);
    /* Take it out of the loop (datagrams to it are lost): the last node takes its place. */
    n.count--;
    n.nodes[leaving] = n.nodes[n.count];
    n.addrs[leaving] = n.addrs[n.count];
    n.deadline[leaving] = n.deadline[n.count];
    net_run(&n, n.now + 10 * 1000000ull, NULL);
    CHECK(ring_correct(&n, -1));
    get_all(&n, -1);
    CHECK(net_run(&n, n.now + 20 * 1000000ull, all_got));
    CHECK(chord.get_found == KEYS && chord.get_right == KEYS);

    printf("chord: %d nodes, %d keys; %llu datagrams in %.1f s of virtual time\n", CHORD_NODES,
           KEYS, (unsigned long long)n.delivered, (double)n.now / 1e6);
    for (int i = 0; i < n.count; i++) overlay_chord_free(n.nodes[i]);
    free(n.queue);
}

/* ---- Mainline DHT ---- */

#define DHT_NODES 12

static struct {
    int started, bootstrapped, announced, stored;
    int peers_event, peer_found;
    int nodes_event, closest_right;
    int item_event, item_right;
    overlay_id want_closest;
    overlay_addr want_peer;
} dht;

static void dht_drain(net *n, int i) {
    uint8_t buf[OVERLAY_DHT_OUTPUT_CAP];
    for (;;) {
        overlay_dht_output out;
        overlay_result rc = overlay_dht_poll_output(n->nodes[i], n->now, buf, sizeof buf, &out);
        REQUIRE(rc == OVERLAY_RESULT_OK);
        if (out.kind == OVERLAY_OUTPUT_KIND_WAIT) {
            n->deadline[i] = out.wait_until_us;
            return;
        }
        if (out.kind == OVERLAY_OUTPUT_KIND_TRANSMIT) {
            net_send(n, i, &out.addr, buf, out.len);
            continue;
        }
        const overlay_dht_event *e = &out.event;
        switch (e->kind) {
        case OVERLAY_DHT_EVENT_KIND_BOOTSTRAPPED: dht.bootstrapped++; break;
        case OVERLAY_DHT_EVENT_KIND_ANNOUNCED: dht.announced += e->count > 0; break;
        case OVERLAY_DHT_EVENT_KIND_STORED: dht.stored += e->count > 0; break;
        case OVERLAY_DHT_EVENT_KIND_PEERS:
            dht.peers_event++;
            CHECK(out.len == e->count * sizeof(overlay_addr));
            for (uint32_t p = 0; p < e->count; p++) {
                overlay_addr a; /* records need no alignment: copy each out */
                memcpy(&a, buf + p * sizeof a, sizeof a);
                dht.peer_found += memcmp(&a, &dht.want_peer, sizeof a) == 0;
            }
            break;
        case OVERLAY_DHT_EVENT_KIND_NODES:
            dht.nodes_event++;
            CHECK(out.len == e->count * sizeof(overlay_node) && e->count > 0);
            if (e->count > 0) {
                overlay_node first;
                memcpy(&first, buf, sizeof first);
                dht.closest_right = memcmp(&first.id, &dht.want_closest, sizeof first.id) == 0;
            }
            break;
        case OVERLAY_DHT_EVENT_KIND_ITEM:
            dht.item_event++;
            dht.item_right = e->found && out.len == 7 && memcmp(buf, "5:hello", 7) == 0;
            break;
        case OVERLAY_DHT_EVENT_KIND_FAILED:
            fprintf(stderr, "dht node %d: command %llu failed (%u)\n", i,
                    (unsigned long long)e->query, (unsigned)e->error);
            break;
        default: break;
        }
    }
}

static void dht_deliver(net *n, int i, const datagram *d) {
    REQUIRE(overlay_dht_handle_datagram(n->nodes[i], n->now, &d->from, d->bytes, d->len) ==
            OVERLAY_RESULT_OK);
}

static const protocol dht_protocol = {dht_drain, dht_deliver};

static int dht_bootstrapped(net *n) {
    (void)n;
    return dht.bootstrapped == dht.started;
}
static int dht_announced(net *n) { (void)n; return dht.announced == 1; }
static int dht_peers(net *n) { (void)n; return dht.peers_event == 1; }
static int dht_stored(net *n) { (void)n; return dht.stored == 1; }
static int dht_item(net *n) { (void)n; return dht.item_event == 1; }
static int dht_nodes(net *n) { (void)n; return dht.nodes_event == 1; }

static void test_dht_network(void) {
    net n;
    net_init(&n, &dht_protocol);
    overlay_dht_config config;
    overlay_dht_config_default(&config);
    n.count = DHT_NODES;
    for (int i = 0; i < n.count; i++) {
        n.addrs[i] = node_addr(i);
        REQUIRE(overlay_dht_new(&config, &n.addrs[i], (uint64_t)i + 100,
                                (overlay_dht **)&n.nodes[i]) == OVERLAY_RESULT_OK);
        n.deadline[i] = 0;
    }
    /* One after another, each through node 0, as nodes come and go in a real DHT. */
    for (int i = 1; i < n.count; i++) {
        uint64_t q;
        CHECK_RC(overlay_dht_bootstrap(n.nodes[i], n.now, &n.addrs[0], 1, &q), OVERLAY_RESULT_OK);
        dht.started++;
        dht_drain(&n, i);
        CHECK(net_run(&n, n.now + 30 * 1000000ull, dht_bootstrapped));
    }

    overlay_id info_hash;
    uint64_t q;
    overlay_id_parse_hex("5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401", &info_hash);
    CHECK_RC(overlay_dht_announce(n.nodes[3], n.now, &info_hash, 51413, &q), OVERLAY_RESULT_OK);
    dht_drain(&n, 3);
    CHECK(net_run(&n, n.now + 30 * 1000000ull, dht_announced));
    dht.want_peer = n.addrs[3];
    dht.want_peer.port = 51413;
    CHECK_RC(overlay_dht_get_peers(n.nodes[9], n.now, &info_hash, &q), OVERLAY_RESULT_OK);
    dht_drain(&n, 9);
    CHECK(net_run(&n, n.now + 30 * 1000000ull, dht_peers));
    CHECK(dht.peer_found == 1);

    overlay_id target;
    CHECK_RC(overlay_dht_put(n.nodes[2], n.now, (const uint8_t *)"5:hello", 7, &q, &target),
             OVERLAY_RESULT_OK);
    dht_drain(&n, 2);
    CHECK(net_run(&n, n.now + 30 * 1000000ull, dht_stored));
    CHECK_RC(overlay_dht_get(n.nodes[7], n.now, &target, &q), OVERLAY_RESULT_OK);
    dht_drain(&n, 7);
    CHECK(net_run(&n, n.now + 30 * 1000000ull, dht_item));
    CHECK(dht.item_right);

    overlay_dht_snapshot s0;
    CHECK_RC(overlay_dht_status(n.nodes[0], &s0), OVERLAY_RESULT_OK);
    dht.want_closest = s0.node.id;
    CHECK_RC(overlay_dht_find_node(n.nodes[5], n.now, &s0.node.id, &q), OVERLAY_RESULT_OK);
    dht_drain(&n, 5);
    CHECK(net_run(&n, n.now + 30 * 1000000ull, dht_nodes));
    CHECK(dht.closest_right);

    uint64_t table = 0;
    for (int i = 0; i < n.count; i++) {
        overlay_dht_snapshot s;
        CHECK_RC(overlay_dht_status(n.nodes[i], &s), OVERLAY_RESULT_OK);
        CHECK(s.table_nodes >= 3 && s.malformed == 0);
        table += s.table_nodes;
    }
    printf("dht: %d nodes, mean table %.1f nodes; %llu datagrams in %.1f s of virtual time\n",
           DHT_NODES, (double)table / DHT_NODES, (unsigned long long)n.delivered,
           (double)n.now / 1e6);
    for (int i = 0; i < n.count; i++) overlay_dht_free(n.nodes[i]);
    free(n.queue);
}

/* ---- Gnutella: servents over in-memory streams ---- */

/* Streams are delivered at once and in order: one FIFO of deliveries for all of them. The
   test itself is an HTTP client, endpoint CLIENT. */
#define SERVENTS 3
#define CLIENT (-1)
#define MAX_LINKS 16
#define MAX_DELIVERIES 1024

typedef struct {
    int a, b;     /* the two ends: servent indices, or CLIENT */
    uint64_t ca, cb; /* each end's name for the connection */
    int open;
} stream;

typedef enum { DELIVER_ACCEPTED, DELIVER_CONNECTED, DELIVER_DATA, DELIVER_CLOSED } delivery_kind;

typedef struct {
    delivery_kind kind;
    int to;
    uint64_t conn;
    overlay_addr peer;
    uint8_t *bytes;
    size_t len;
} delivery;

static struct {
    overlay_gnutella *node[SERVENTS];
    overlay_addr addr[SERVENTS];
    stream links[MAX_LINKS];
    int nlinks;
    delivery fifo[MAX_DELIVERIES];
    int head, tail;
    uint64_t next_inbound;
    /* what the servents reported */
    int connected[SERVENTS], closed[SERVENTS];
    int hits, hit_right;
    uint64_t search, search_node;
    uint64_t upload_conn;
    int uploads;
    /* the HTTP client's side */
    uint8_t client_rx[4096];
    size_t client_len;
    int client_closed;
} gn;

static const char CONTENT[] = "the free software song, 30 b.\n";

static void enqueue(delivery d) {
    REQUIRE((gn.tail + 1) % MAX_DELIVERIES != gn.head);
    gn.fifo[gn.tail] = d;
    gn.tail = (gn.tail + 1) % MAX_DELIVERIES;
}

/* The other end of connection `conn` of endpoint `at`. */
static stream *peer_of(int at, uint64_t conn, int *to, uint64_t *to_conn) {
    for (int l = 0; l < gn.nlinks; l++) {
        stream *s = &gn.links[l];
        if (!s->open) continue;
        if (s->a == at && s->ca == conn) {
            *to = s->b, *to_conn = s->cb;
            return s;
        }
        if (s->b == at && s->cb == conn) {
            *to = s->a, *to_conn = s->ca;
            return s;
        }
    }
    return NULL;
}

static void send_bytes(int from, uint64_t conn, const uint8_t *bytes, size_t len) {
    int to;
    uint64_t to_conn;
    if (!peer_of(from, conn, &to, &to_conn)) return;
    delivery d = {.kind = DELIVER_DATA, .to = to, .conn = to_conn, .len = len};
    d.bytes = malloc(len ? len : 1);
    REQUIRE(d.bytes != NULL);
    memcpy(d.bytes, bytes, len);
    enqueue(d);
}

static void gn_drain(int i, uint64_t now) {
    static uint8_t buf[OVERLAY_GNUTELLA_OUTPUT_CAP];
    for (;;) {
        overlay_gnutella_output out;
        REQUIRE(overlay_gnutella_poll_output(gn.node[i], now, buf, sizeof buf, &out) ==
                OVERLAY_RESULT_OK);
        switch (out.kind) {
        case OVERLAY_OUTPUT_KIND_WAIT: return;
        case OVERLAY_OUTPUT_KIND_TRANSMIT: send_bytes(i, out.conn, buf, out.len); break;
        case OVERLAY_OUTPUT_KIND_CONNECT: {
            int j = -1;
            for (int k = 0; k < SERVENTS; k++) {
                if (memcmp(&gn.addr[k], &out.addr, sizeof out.addr) == 0) j = k;
            }
            if (j < 0) {
                enqueue((delivery){.kind = DELIVER_CLOSED, .to = i, .conn = out.conn});
                break;
            }
            REQUIRE(gn.nlinks < MAX_LINKS);
            uint64_t inbound = OVERLAY_CONN_INBOUND | gn.next_inbound++;
            gn.links[gn.nlinks++] = (stream){i, j, out.conn, inbound, 1};
            overlay_addr from = gn.addr[i];
            from.port = (uint16_t)(50000 + i); /* a dialler's ephemeral port */
            enqueue((delivery){.kind = DELIVER_ACCEPTED, .to = j, .conn = inbound, .peer = from});
            enqueue((delivery){.kind = DELIVER_CONNECTED, .to = i, .conn = out.conn});
            break;
        }
        case OVERLAY_OUTPUT_KIND_CLOSE: {
            int to;
            uint64_t to_conn;
            stream *s = peer_of(i, out.conn, &to, &to_conn);
            if (s) {
                s->open = 0;
                enqueue((delivery){.kind = DELIVER_CLOSED, .to = to, .conn = to_conn});
            }
            break;
        }
        case OVERLAY_OUTPUT_KIND_EVENT: {
            const overlay_gnutella_event *e = &out.event;
            if (e->kind == OVERLAY_GNUTELLA_EVENT_KIND_CONNECTED) gn.connected[i]++;
            if (e->kind == OVERLAY_GNUTELLA_EVENT_KIND_CLOSED) gn.closed[i]++;
            if (e->kind == OVERLAY_GNUTELLA_EVENT_KIND_HITS && (uint64_t)i == gn.search_node &&
                e->query == gn.search) {
                gn.hits++;
                /* One result: its header, then its name and a NUL. */
                overlay_gnutella_result r;
                CHECK(e->count == 1 && out.len >= sizeof r);
                memcpy(&r, buf, sizeof r);
                const char *name = (const char *)buf + sizeof r;
                gn.hit_right = e->count == 1 && r.index == 0 && r.size == 30 && r.has_sha1 &&
                               r.sha1.bytes[0] == 0x5f && r.name_len == 22 &&
                               strcmp(name, "free software song.ogg") == 0 &&
                               out.len == sizeof r + r.name_len + 1 &&
                               memcmp(&e->addr, &gn.addr[1], sizeof e->addr) == 0;
            }
            if (e->kind == OVERLAY_GNUTELLA_EVENT_KIND_UPLOAD) {
                /* Stream the file's bytes: here, all at once. */
                gn.uploads++;
                gn.upload_conn = e->conn;
                CHECK(e->index == 0 && e->start == 0 && e->length == 30);
                CHECK_RC(overlay_gnutella_upload(gn.node[i], now, e->conn,
                                                 (const uint8_t *)CONTENT + e->start,
                                                 (size_t)e->length),
                         OVERLAY_RESULT_OK);
            }
            break;
        }
        default: break;
        }
    }
}

/* Delivers everything queued, draining each servent after its input. */
static void gn_run(uint64_t now) {
    while (gn.head != gn.tail) {
        delivery d = gn.fifo[gn.head];
        gn.head = (gn.head + 1) % MAX_DELIVERIES;
        if (d.to == CLIENT) {
            if (d.kind == DELIVER_DATA && gn.client_len + d.len <= sizeof gn.client_rx) {
                memcpy(gn.client_rx + gn.client_len, d.bytes, d.len);
                gn.client_len += d.len;
            }
            gn.client_closed |= d.kind == DELIVER_CLOSED;
        } else {
            overlay_gnutella *h = gn.node[d.to];
            overlay_result rc = OVERLAY_RESULT_OK;
            switch (d.kind) {
            case DELIVER_ACCEPTED:
                rc = overlay_gnutella_handle_accepted(h, now, d.conn, &d.peer);
                break;
            case DELIVER_CONNECTED:
                rc = overlay_gnutella_handle_connected(h, now, d.conn);
                break;
            case DELIVER_DATA:
                rc = overlay_gnutella_handle_received(h, now, d.conn, d.bytes, d.len);
                break;
            case DELIVER_CLOSED:
                rc = overlay_gnutella_handle_closed(h, now, d.conn);
                break;
            }
            REQUIRE(rc == OVERLAY_RESULT_OK);
            gn_drain(d.to, now);
        }
        free(d.bytes);
    }
}

static void test_gnutella_network(void) {
    memset(&gn, 0, sizeof gn);
    static const uint32_t roles[SERVENTS] = {
        OVERLAY_GNUTELLA_ROLE_ULTRAPEER, OVERLAY_GNUTELLA_ROLE_LEAF, OVERLAY_GNUTELLA_ROLE_LEAF};
    for (int i = 0; i < SERVENTS; i++) {
        overlay_gnutella_config config;
        gn.addr[i] = node_addr(i);
        gn.addr[i].port = 6346;
        REQUIRE(overlay_gnutella_config_default(roles[i], &gn.addr[i], &config) ==
                OVERLAY_RESULT_OK);
        REQUIRE(overlay_gnutella_new(&config, (uint64_t)i + 7, &gn.node[i]) == OVERLAY_RESULT_OK);
    }
    /* Servent 1, a leaf, shares two files; servent 2, a leaf, searches through servent 0. */
    overlay_gnutella_file files[2] = {
        {.index = 0, .size = 30, .name = (const uint8_t *)"free software song.ogg",
         .name_len = 22, .has_sha1 = true},
        {.index = 1, .size = 5, .name = (const uint8_t *)"readme.txt", .name_len = 10},
    };
    overlay_id_parse_hex("5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401", &files[0].sha1);
    uint64_t now = 1000;
    CHECK_RC(overlay_gnutella_share(gn.node[1], now, files, 2), OVERLAY_RESULT_OK);
    uint64_t conn;
    for (int i = 1; i < SERVENTS; i++) {
        CHECK_RC(overlay_gnutella_connect(gn.node[i], now, &gn.addr[0], &conn), OVERLAY_RESULT_OK);
        gn_drain(i, now);
        gn_run(now);
    }
    CHECK(gn.connected[0] == 2 && gn.connected[1] == 1 && gn.connected[2] == 1);
    overlay_gnutella_snapshot s;
    CHECK_RC(overlay_gnutella_status(gn.node[0], &s), OVERLAY_RESULT_OK);
    CHECK(s.peers == 2 && s.role == OVERLAY_GNUTELLA_ROLE_ULTRAPEER);

    /* A keyword search from servent 2 reaches servent 1 through the ultrapeer (whose QRP
       table of servent 1 lets it through), and the hit comes back the same way. */
    gn.search_node = 2;
    CHECK_RC(overlay_gnutella_search(gn.node[2], now, (const uint8_t *)"free song", 9, NULL,
                                     &gn.search),
             OVERLAY_RESULT_OK);
    gn_drain(2, now);
    gn_run(now);
    CHECK(gn.hits == 1 && gn.hit_right);
    /* By SHA-1. */
    gn.hits = gn.hit_right = 0;
    CHECK_RC(overlay_gnutella_search(gn.node[2], now, (const uint8_t *)"", 0, &files[0].sha1,
                                     &gn.search),
             OVERLAY_RESULT_OK);
    gn_drain(2, now);
    gn_run(now);
    CHECK(gn.hits == 1 && gn.hit_right);
    /* Nobody has this. */
    gn.hits = 0;
    CHECK_RC(overlay_gnutella_search(gn.node[2], now, (const uint8_t *)"jazz", 4, NULL,
                                     &gn.search),
             OVERLAY_RESULT_OK);
    gn_drain(2, now);
    gn_run(now);
    CHECK(gn.hits == 0);

    /* The test downloads the file from servent 1 over HTTP, as a client would. */
    uint64_t inbound = OVERLAY_CONN_INBOUND | gn.next_inbound++;
    gn.links[gn.nlinks++] = (stream){CLIENT, 1, 77, inbound, 1};
    overlay_addr client = node_addr(9);
    CHECK_RC(overlay_gnutella_handle_accepted(gn.node[1], now, inbound, &client),
             OVERLAY_RESULT_OK);
    const char *get =
        "GET /get/0/free%20software%20song.ogg HTTP/1.1\r\nHost: 10.0.0.2:6346\r\n\r\n";
    CHECK_RC(overlay_gnutella_handle_received(gn.node[1], now, inbound, (const uint8_t *)get,
                                              strlen(get)),
             OVERLAY_RESULT_OK);
    gn_drain(1, now);
    gn_run(now);
    CHECK(gn.uploads == 1 && gn.upload_conn == inbound && gn.client_closed);
    CHECK(gn.client_len > 30 && memcmp(gn.client_rx, "HTTP/1.1 200", 12) == 0);
    CHECK(memcmp(gn.client_rx + gn.client_len - 30, CONTENT, 30) == 0);
    CHECK_RC(overlay_gnutella_upload(gn.node[1], now, inbound, (const uint8_t *)"x", 1),
             OVERLAY_RESULT_NO_UPLOAD); /* done: the connection is gone */

    /* Servent 2 leaves: it says Bye, and both ends report the close. */
    CHECK_RC(overlay_gnutella_disconnect(gn.node[2], now, conn), OVERLAY_RESULT_OK);
    gn_drain(2, now);
    gn_run(now);
    CHECK(gn.closed[2] == 1 && gn.closed[0] == 1);
    CHECK_RC(overlay_gnutella_status(gn.node[0], &s), OVERLAY_RESULT_OK);
    CHECK(s.peers == 1 && s.queries_received == 3 && s.malformed == 0);
    CHECK_RC(overlay_gnutella_status(gn.node[1], &s), OVERLAY_RESULT_OK);
    CHECK(s.hits_sent == 2 && s.uploads == 1);

    printf("gnutella: 1 ultrapeer, 2 leaves; 3 searches, 2 hits, 1 download of %d bytes\n",
           (int)strlen(CONTENT));
    for (int i = 0; i < SERVENTS; i++) overlay_gnutella_free(gn.node[i]);
}

int main(void) {
    test_chord_ring();
    test_dht_network();
    test_gnutella_network();
    return check_summary("network");
}
