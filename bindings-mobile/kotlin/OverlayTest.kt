// The Kotlin bindings against real peers: a Chord node and a DHT node on real
// java.net.DatagramSockets join a ring and a DHT of `overlay` processes, store and read
// values both ways (checked with the `overlay` command), and hit the error paths; a
// Gnutella leaf on real TCP sockets searches and downloads through `overlay gnutella`
// ultrapeers and serves a file to `overlay gnutella fetch`; two torrent sessions trade a
// torrent over loopback TCP. Ends with `N passed, N failed`.
//
//   java ... OverlayTestKt --overlay BIN --chord ADDR --dht ADDR --gnutella ADDR --work DIR
//
// bindings-mobile/test.sh starts the `overlay` processes and stops them.

import dev.overlay.*
import java.io.File
import java.net.DatagramPacket
import java.net.DatagramSocket
import java.net.InetAddress
import java.net.InetSocketAddress
import java.net.ServerSocket
import java.net.Socket
import java.net.SocketTimeoutException
import java.security.MessageDigest
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlin.random.Random

var passed = 0
var failed = 0

/** Records one check; pump threads call it too. */
@Synchronized
fun check(name: String, ok: Boolean, detail: String = "") {
    if (ok) passed++ else failed++
    println((if (ok) "ok   " else "FAIL ") + name + (if (ok || detail.isEmpty()) "" else ": $detail"))
}

/** Runs a pump thread's body; an exception fails the run instead of dying unseen. */
fun pumping(name: String, body: () -> Unit) = Thread {
    try {
        body()
    } catch (e: Throwable) {
        check("$name: the pump ran without an exception", false, "${e::class.simpleName}: ${e.message}")
    }
}

/** Runs `body`; passes if it throws exactly `T`. */
inline fun <reified T : Throwable> checkThrows(name: String, body: () -> Unit) {
    try {
        body()
        check(name, false, "no exception")
    } catch (e: Throwable) {
        check(name, e is T, "threw ${e::class.simpleName}: ${e.message}")
    }
}

val loopback: InetAddress = InetAddress.getByName("127.0.0.1")

fun nowUs(): ULong = (System.nanoTime() / 1000).toULong()

fun sockAddr(a: java.net.SocketAddress): SocketAddress {
    val i = a as InetSocketAddress
    return SocketAddress(i.address.hostAddress, i.port.toUShort())
}

fun parseAddr(s: String): SocketAddress {
    val (ip, port) = s.split(":")
    return SocketAddress(ip, port.toUShort())
}

fun inet(a: SocketAddress) = InetSocketAddress(InetAddress.getByName(a.ip), a.port.toInt())

fun sha1(b: ByteArray): ByteArray = MessageDigest.getInstance("SHA-1").digest(b)

/** A Chord key's id: SHA-256 of the key, truncated to 160 bits. */
fun keyId(key: String): ByteArray = MessageDigest.getInstance("SHA-256").digest(key.toByteArray()).copyOf(20)

/** Whether `x` lies in the ring interval (a, b]. */
fun ringBetween(x: ByteArray, a: ByteArray, b: ByteArray): Boolean {
    val (xi, ai, bi) = listOf(x, a, b).map { java.math.BigInteger(1, it) }
    return if (ai < bi) xi > ai && xi <= bi else xi > ai || xi <= bi
}

fun hex(b: ByteArray) = b.joinToString("") { "%02x".format(it) }

fun unhex(s: String) = ByteArray(s.length / 2) { s.substring(2 * it, 2 * it + 2).toInt(16).toByte() }

/** Runs the `overlay` command; its stdout, or null if it failed or ran over 30 s. */
fun overlay(bin: String, vararg args: String): String? {
    val p = ProcessBuilder(bin, *args).redirectError(ProcessBuilder.Redirect.INHERIT).start()
    // Read while it runs, so that a full pipe never blocks it.
    val out = java.util.concurrent.CompletableFuture.supplyAsync { p.inputStream.bufferedReader().readText() }
    if (!p.waitFor(30, TimeUnit.SECONDS)) {
        p.destroyForcibly()
        return null
    }
    return if (p.exitValue() == 0) out.get(5, TimeUnit.SECONDS) else null
}

/** One output of any machine, as the drivers below act on it. */
sealed interface Out<out E> {
    data class Send(val to: SocketAddress, val bytes: ByteArray) : Out<Nothing>
    data class Write(val conn: ULong, val bytes: ByteArray) : Out<Nothing>
    data class Dial(val conn: ULong, val to: SocketAddress) : Out<Nothing>
    data class Hangup(val conn: ULong) : Out<Nothing>
    data class Ev<E>(val event: E) : Out<E>
    data class Wait(val untilUs: ULong?) : Out<Nothing>
}

/** Events a pump thread delivers, awaited by the test thread. */
class Events<E> {
    private val queue = LinkedBlockingQueue<E>()
    private val seen = ArrayList<E>()

    fun put(e: E) = queue.put(e)

    /** The first event (earlier unclaimed ones included) matching `pred`, within `ms`. */
    fun await(ms: Long, pred: (E) -> Boolean): E? {
        seen.firstOrNull(pred)?.let { seen.remove(it); return it }
        val deadline = System.currentTimeMillis() + ms
        while (true) {
            val left = deadline - System.currentTimeMillis()
            if (left <= 0) return null
            val e = queue.poll(left, TimeUnit.MILLISECONDS) ?: return null
            if (pred(e)) return e
            seen.add(e)
        }
    }
}

/**
 * A datagram machine on a real UDP socket, pumped by a thread of its own: datagrams in,
 * outputs out until `Wait`, sleep until the deadline or the next datagram (at most 10 ms,
 * so that commands from the test thread go out at once).
 */
class UdpPeer<E>(
    val socket: DatagramSocket,
    private val input: (ULong, SocketAddress, ByteArray) -> Unit,
    private val poll: (ULong) -> Out<E>,
) {
    val events = Events<E>()
    @Volatile private var running = true
    private val thread = pumping("udp") {
        val buf = ByteArray(65536)
        while (running) {
            var until: ULong? = null
            while (true) {
                when (val o = poll(nowUs())) {
                    is Out.Send -> socket.send(DatagramPacket(o.bytes, o.bytes.size, inet(o.to)))
                    is Out.Ev -> events.put(o.event)
                    is Out.Wait -> { until = o.untilUs; break }
                    else -> error("a datagram machine asked for a connection")
                }
            }
            val waitMs = until?.let { ((it.toLong() - nowUs().toLong()) / 1000).coerceIn(1, 10) } ?: 10
            socket.soTimeout = waitMs.toInt()
            val packet = DatagramPacket(buf, buf.size)
            try {
                socket.receive(packet)
                input(nowUs(), sockAddr(packet.socketAddress), packet.data.copyOf(packet.length))
            } catch (_: SocketTimeoutException) {
            }
        }
    }

    val addr: SocketAddress get() = sockAddr(socket.localSocketAddress)

    fun start() = thread.start()

    fun stop() {
        running = false
        thread.join()
        socket.close()
    }
}

/**
 * A stream machine on real TCP sockets: one pump thread owns the machine's outputs and
 * every input (reader threads and the listener only queue them), so the machine sees one
 * ordered story per connection.
 */
class TcpPeer<E>(
    private val listener: ServerSocket?,
    private val accepted: (ULong, SocketAddress) -> ULong,
    private val connected: (ULong, ULong) -> Unit,
    private val received: (ULong, ULong, ByteArray) -> Unit,
    private val closed: (ULong, ULong) -> Unit,
    private val poll: (ULong) -> Out<E>,
    private val readMax: Int = 16384,
) {
    val events = Events<E>()
    private val inbox = LinkedBlockingQueue<() -> Unit>()
    private val sockets = ConcurrentHashMap<ULong, Socket>()
    /** Connections the machine closed while their dial was still under way. */
    private val abandoned = ConcurrentHashMap.newKeySet<ULong>()
    @Volatile private var running = true

    private fun reader(conn: ULong, s: Socket) = Thread {
        val buf = ByteArray(readMax)
        try {
            while (true) {
                val n = s.getInputStream().read(buf)
                if (n < 0) break
                val bytes = buf.copyOf(n)
                inbox.put { received(nowUs(), conn, bytes) }
            }
        } catch (_: Exception) {
        }
        inbox.put { if (sockets.remove(conn) != null) closed(nowUs(), conn) }
    }.start()

    private val pump = pumping("tcp") {
        while (running) {
            var until: ULong? = null
            while (true) {
                when (val o = poll(nowUs())) {
                    is Out.Write -> try {
                        sockets[o.conn]?.getOutputStream()?.write(o.bytes)
                    } catch (_: Exception) {
                        sockets.remove(o.conn)?.close()
                        closed(nowUs(), o.conn)
                    }
                    is Out.Dial -> Thread {
                        try {
                            val s = Socket()
                            s.connect(inet(o.to), 5000)
                            inbox.put {
                                if (abandoned.remove(o.conn)) {
                                    s.close()
                                } else {
                                    sockets[o.conn] = s
                                    connected(nowUs(), o.conn)
                                    reader(o.conn, s)
                                }
                            }
                        } catch (_: Exception) {
                            inbox.put { if (!abandoned.remove(o.conn)) closed(nowUs(), o.conn) }
                        }
                    }.start()
                    is Out.Hangup -> sockets.remove(o.conn)?.close() ?: abandoned.add(o.conn)
                    is Out.Ev -> events.put(o.event)
                    is Out.Wait -> { until = o.untilUs; break }
                    is Out.Send -> error("a stream machine sent a datagram")
                }
            }
            val waitMs = until?.let { ((it.toLong() - nowUs().toLong()) / 1000).coerceIn(0, 10) } ?: 10
            inbox.poll(waitMs, TimeUnit.MILLISECONDS)?.invoke()
        }
    }

    private val acceptor = Thread {
        try {
            while (listener != null && running) {
                val s = listener.accept()
                inbox.put {
                    val conn = accepted(nowUs(), sockAddr(s.remoteSocketAddress))
                    sockets[conn] = s
                    reader(conn, s)
                }
            }
        } catch (_: Exception) {
        }
    }

    /** Runs `f` on the pump thread (answers to events that must follow the event). */
    fun later(f: () -> Unit) = inbox.put(f)

    fun start() {
        pump.start()
        if (listener != null) acceptor.start()
    }

    fun stop() {
        running = false
        pump.join()
        listener?.close()
        sockets.values.forEach { it.close() }
    }
}

fun chordPeer(node: ChordNode, socket: DatagramSocket) = UdpPeer<ChordEvent>(
    socket,
    { now, from, bytes -> node.handleDatagram(now, from, bytes) },
    { now ->
        when (val o = node.pollOutput(now)) {
            is ChordOutput.Transmit -> Out.Send(o.to, o.datagram)
            is ChordOutput.Event -> Out.Ev(o.event)
            is ChordOutput.Wait -> Out.Wait(o.untilUs)
        }
    },
)

fun dhtPeer(node: DhtNode, socket: DatagramSocket) = UdpPeer<DhtEvent>(
    socket,
    { now, from, bytes -> node.handleDatagram(now, from, bytes) },
    { now ->
        when (val o = node.pollOutput(now)) {
            is DhtOutput.Transmit -> Out.Send(o.to, o.datagram)
            is DhtOutput.Event -> Out.Ev(o.event)
            is DhtOutput.Wait -> Out.Wait(o.untilUs)
        }
    },
)

fun chordTests(bin: String, ring: SocketAddress) {
    val socket = DatagramSocket(InetSocketAddress(loopback, 0))
    val config = chordConfigDefault().copy(stabilizeIntervalMs = 200u, fixFingersIntervalMs = 100u)
    val node = ChordNode(config, sockAddr(socket.localSocketAddress), 7u)
    val peer = chordPeer(node, socket)
    peer.start()
    val me = peer.addr
    try {
        val join = node.join(nowUs(), ring)
        val joined = peer.events.await(10_000) { it is ChordEvent.Joined && it.query == join }
        check("chord: joins the ring of `overlay chord join` processes", joined != null)
        checkThrows<OverlayException.AlreadyMember>("chord: joining twice is AlreadyMember") {
            node.join(nowUs(), ring)
        }
        // Stabilization makes us somebody's successor: the ring closes over us.
        Thread.sleep(2000)
        val status = node.status()
        check(
            "chord: a member with a predecessor and successors",
            status.phase == ChordPhase.MEMBER && status.predecessor != null && status.successors.isNotEmpty(),
            "$status",
        )

        val put = node.put(nowUs(), "kotlin-key".toByteArray(), "from kotlin".toByteArray())
        val putDone = peer.events.await(10_000) { (it is ChordEvent.PutDone && it.query == put) || (it is ChordEvent.Failed && it.query == put) }
        check("chord: put from Kotlin completes", putDone is ChordEvent.PutDone, "$putDone")
        val got = overlay(bin, "chord", "get", "kotlin-key", "--via", "${ring.ip}:${ring.port}")
        check("chord: `overlay chord get` reads the Kotlin put", got?.trim() == "from kotlin", "$got")

        val cliPut = overlay(bin, "chord", "put", "cli-key", "from the cli", "--via", "${ring.ip}:${ring.port}")
        check("chord: `overlay chord put` stores a value", cliPut != null)
        val get = node.get(nowUs(), "cli-key".toByteArray())
        val getDone = peer.events.await(10_000) { (it is ChordEvent.GetDone && it.query == get) || (it is ChordEvent.Failed && it.query == get) }
        check(
            "chord: Kotlin get reads the command's put",
            getDone is ChordEvent.GetDone && getDone.value?.decodeToString() == "from the cli",
            "$getDone",
        )

        // A key this node should own (its id in (predecessor, us], Stoica's successor
        // rule), which the command's lookup must route to us.
        val pred = node.status().predecessor?.id
        val owned = pred?.let { p ->
            (0 until 1_000_000).asSequence().map { "probe-$it" }.firstOrNull { ringBetween(keyId(it), p, status.node.id) }
        }
        val owner = owned?.let { overlay(bin, "--json", "chord", "lookup", it, "--via", "${ring.ip}:${ring.port}") }
        check(
            "chord: `overlay chord lookup` finds the Kotlin node owns the keys in its arc",
            owner?.contains("\"addr\":\"${me.ip}:${me.port}\"") == true,
            "$owned: $owner",
        )
        if (owned != null) {
            val keys = node.status().keys
            val stored = overlay(bin, "chord", "put", owned, "kept by kotlin", "--via", "${ring.ip}:${ring.port}")
            check(
                "chord: `overlay chord put` of that key is stored at the Kotlin node",
                stored?.contains("at ${me.ip}:${me.port} ") == true && node.status().keys == keys + 1u,
                "$stored keys $keys -> ${node.status().keys}",
            )
        }

        checkThrows<OverlayException.ValueTooLarge>("chord: a 2000-byte value is ValueTooLarge") {
            node.put(nowUs(), "big".toByteArray(), ByteArray(2000))
        }
        checkThrows<OverlayException.InvalidArgument>("chord: a bad address is InvalidArgument") {
            node.handleDatagram(nowUs(), SocketAddress("not-an-ip", 1u), ByteArray(1))
        }
        val before = node.status().malformed
        node.handleDatagram(nowUs(), ring, byteArrayOf(1, 2, 3))
        check("chord: a malformed datagram is dropped and counted", node.status().malformed == before + 1u)
        val idle = ChordNode(config, SocketAddress("127.0.0.1", 1u), 1u)
        checkThrows<OverlayException.NotMember>("chord: an idle node's lookup is NotMember") {
            idle.lookup(nowUs(), "x".toByteArray())
        }
        idle.close()

        node.leave(nowUs())
        val left = peer.events.await(10_000) { it is ChordEvent.Left }
        check("chord: a graceful leave completes", left != null)
        val after = overlay(bin, "chord", "get", "kotlin-key", "--via", "${ring.ip}:${ring.port}")
        check("chord: the Kotlin put survives the leave", after?.trim() == "from kotlin", "$after")
        if (owned != null) {
            val heir = overlay(bin, "--json", "chord", "lookup", owned, "--via", "${ring.ip}:${ring.port}")
            val value = overlay(bin, "chord", "get", owned, "--via", "${ring.ip}:${ring.port}")
            check(
                "chord: the key the Kotlin node owned has a new owner, which serves it",
                heir != null && !heir.contains("\"addr\":\"${me.ip}:${me.port}\"") && value?.trim() == "kept by kotlin",
                "$heir $value",
            )
        }
    } finally {
        peer.stop()
        node.close()
    }
}

fun dhtTests(bin: String, dht: SocketAddress) {
    val socket = DatagramSocket(InetSocketAddress(loopback, 0))
    val config = dhtConfigDefault().copy(restrictIps = false)
    val node = DhtNode(config, sockAddr(socket.localSocketAddress), 11u)
    val peer = dhtPeer(node, socket)
    peer.start()
    val via = "${dht.ip}:${dht.port}"
    try {
        val boot = node.bootstrap(nowUs(), listOf(dht))
        val booted = peer.events.await(20_000) { it is DhtEvent.Bootstrapped && it.query == boot }
        check(
            "dht: bootstraps from `overlay dht start` nodes",
            booted is DhtEvent.Bootstrapped && booted.nodes >= 3u,
            "$booted",
        )

        val ours = sha1("kotlin torrent".toByteArray())
        val ann = node.announce(nowUs(), ours, 6881u.toUShort())
        val announced = peer.events.await(20_000) { (it is DhtEvent.Announced || it is DhtEvent.Failed) && queryOf(it) == ann }
        check("dht: announce from Kotlin is stored", announced is DhtEvent.Announced && announced.stored > 0u, "$announced")
        val peers = overlay(bin, "dht", "get-peers", hex(ours), "--via", via)
        check("dht: `overlay dht get-peers` finds the Kotlin announce", peers?.contains("127.0.0.1:6881") == true, "$peers")

        val theirs = sha1("cli torrent".toByteArray())
        check("dht: `overlay dht announce` runs", overlay(bin, "dht", "announce", hex(theirs), "--port", "40000", "--via", via) != null)
        val gp = node.getPeers(nowUs(), theirs)
        val found = peer.events.await(20_000) { (it is DhtEvent.Peers || it is DhtEvent.Failed) && queryOf(it) == gp }
        check(
            "dht: Kotlin get_peers finds the command's announce",
            found is DhtEvent.Peers && found.peers.contains(SocketAddress("127.0.0.1", 40000u)),
            "$found",
        )

        val item = bencode("from kotlin")
        val put = node.put(nowUs(), item)
        check("dht: the BEP 44 target is SHA-1 of the bencoded value", put.target.contentEquals(sha1(item)))
        val stored = peer.events.await(20_000) { (it is DhtEvent.Stored || it is DhtEvent.Failed) && queryOf(it) == put.query }
        check("dht: BEP 44 put from Kotlin is stored", stored is DhtEvent.Stored && stored.stored > 0u, "$stored")
        val cliGet = overlay(bin, "dht", "get", hex(put.target), "--via", via)
        check("dht: `overlay dht get` reads the Kotlin put", cliGet?.trim() == "from kotlin", "$cliGet")

        val cliPut = overlay(bin, "dht", "put", "from the cli", "--via", via)
        val target = cliPut?.lines()?.firstOrNull()?.trim()
        check("dht: `overlay dht put` prints a target", target?.length == 40, "$cliPut")
        if (target?.length == 40) {
            val get = node.get(nowUs(), unhex(target))
            val got = peer.events.await(20_000) { (it is DhtEvent.Item || it is DhtEvent.Failed) && queryOf(it) == get }
            check(
                "dht: Kotlin get reads the command's put",
                got is DhtEvent.Item && got.value?.contentEquals(bencode("from the cli")) == true,
                "$got",
            )
        }

        // The command bootstraps through the Kotlin node alone: it answers queries.
        val me = peer.addr
        val through = overlay(bin, "dht", "get-peers", hex(theirs), "--via", "${me.ip}:${me.port}")
        check("dht: the Kotlin node answers `overlay dht get-peers --via` it", through?.contains("127.0.0.1:40000") == true, "$through")

        val fn = node.findNode(nowUs(), Random(5).nextBytes(20))
        val nodes = peer.events.await(20_000) { (it is DhtEvent.Nodes || it is DhtEvent.Failed) && queryOf(it) == fn }
        check("dht: find_node converges on nodes", nodes is DhtEvent.Nodes && nodes.nodes.size >= 3, "$nodes")

        checkThrows<OverlayException.InvalidArgument>("dht: a 19-byte info hash is InvalidArgument") {
            node.getPeers(nowUs(), ByteArray(19))
        }
        checkThrows<OverlayException.BadItem>("dht: a put of bytes that are not bencode is BadItem") {
            node.put(nowUs(), "not bencode".toByteArray())
        }
        val lonely = DhtNode(config, SocketAddress("127.0.0.1", 2u), 2u)
        checkThrows<OverlayException.NoNodes>("dht: bootstrap from nothing is NoNodes") {
            lonely.bootstrap(nowUs(), listOf())
        }
        lonely.close()
        val before = node.status().malformed
        repeat(100) { node.handleDatagram(nowUs(), dht, Random(it).nextBytes(it + 1)) }
        val s = node.status()
        check("dht: 100 malformed datagrams are dropped and counted", s.malformed == before + 100u, "$s")
    } finally {
        peer.stop()
        node.close()
    }
}

fun queryOf(e: DhtEvent): ULong? = when (e) {
    is DhtEvent.Bootstrapped -> e.query
    is DhtEvent.Nodes -> e.query
    is DhtEvent.Peers -> e.query
    is DhtEvent.Announced -> e.query
    is DhtEvent.Item -> e.query
    is DhtEvent.Stored -> e.query
    is DhtEvent.Failed -> e.query
    is DhtEvent.NewId -> null
}

fun gnutellaPeer(servent: GnutellaServent, listener: ServerSocket) = TcpPeer<GnutellaEvent>(
    listener,
    { now, from -> servent.accepted(now, from) },
    { now, conn -> servent.connected(now, conn) },
    { now, conn, bytes -> servent.received(now, conn, bytes) },
    { now, conn -> servent.closed(now, conn) },
    { now ->
        when (val o = servent.pollOutput(now)) {
            is GnutellaOutput.Transmit -> Out.Write(o.conn, o.bytes)
            is GnutellaOutput.Connect -> Out.Dial(o.conn, o.to)
            is GnutellaOutput.Close -> Out.Hangup(o.conn)
            is GnutellaOutput.Event -> Out.Ev(o.event)
            is GnutellaOutput.Wait -> Out.Wait(o.untilUs)
        }
    },
)

fun gnutellaTests(bin: String, ultrapeer: SocketAddress, work: File) {
    val listener = ServerSocket(0, 16, loopback)
    val listen = sockAddr(listener.localSocketAddress)
    val servent = GnutellaServent(gnutellaConfigDefault(GnutellaRole.LEAF, listen), 13u)
    val shared = Random(99).nextBytes(200_000)
    servent.share(nowUs(), listOf(GnutellaFile(0u, shared.size.toULong(), "kotlin shared file.bin", sha1(shared))))
    val peer = gnutellaPeer(servent, listener)
    peer.start()
    try {
        val conn = servent.connect(nowUs(), ultrapeer)
        val up = peer.events.await(10_000) { it is GnutellaEvent.Connected && it.conn == conn }
        check(
            "gnutella: a Kotlin leaf connects to an `overlay gnutella serve` ultrapeer",
            up is GnutellaEvent.Connected && up.role == GnutellaRole.ULTRAPEER,
            "$up",
        )
        // Let the ultrapeer take our QRP table before anyone searches.
        Thread.sleep(500)

        val search = servent.search(nowUs(), "overlay song", null)
        val hits = peer.events.await(10_000) { it is GnutellaEvent.Hits && it.query == search } as GnutellaEvent.Hits?
        val hit = hits?.results?.firstOrNull()
        check("gnutella: a search from Kotlin finds the file another servent shares", hit?.name == "overlay song.ogg", "$hits")
        if (hits != null && hit != null) {
            // Download it over HTTP as Gnutella 0.6 says (GET /get/<index>/<name>).
            val s = Socket()
            s.connect(inet(hits.from), 5000)
            s.soTimeout = 10_000
            val name = java.net.URLEncoder.encode(hit.name, "UTF-8").replace("+", "%20")
            s.getOutputStream().write("GET /get/${hit.index}/$name HTTP/1.1\r\nHost: x\r\n\r\n".toByteArray())
            val response = s.getInputStream().readBytes()
            s.close()
            val head = response.indexOfFirst(4) { i -> response[i] == '\r'.code.toByte() && response[i + 1] == '\n'.code.toByte() && response[i + 2] == '\r'.code.toByte() && response[i + 3] == '\n'.code.toByte() }
            val body = if (head >= 0) response.copyOfRange(head + 4, response.size) else ByteArray(0)
            check(
                "gnutella: the download's SHA-1 is the hit's urn:sha1",
                hit.sha1 != null && sha1(body).contentEquals(hit.sha1!!) && body.size.toULong() == hit.size,
                "${body.size} bytes",
            )
        }

        // `overlay gnutella fetch` searches through the ultrapeer and downloads from us:
        // the servent asks for the bytes with Upload events.
        val uploads = Thread {
            while (true) {
                val e = peer.events.await(20_000) { it is GnutellaEvent.Upload } as GnutellaEvent.Upload? ?: break
                var at = e.start.toInt()
                val end = at + e.length.toInt()
                while (at < end) {
                    val n = minOf(gnutellaUploadChunk().toInt(), end - at)
                    val chunk = shared.copyOfRange(at, at + n)
                    peer.later { servent.upload(nowUs(), e.conn, chunk) }
                    at += n
                }
            }
        }
        uploads.start()
        val out = File(work, "fetched.bin")
        val fetched = overlay(bin, "gnutella", "fetch", "kotlin", "shared", "--connect", "${ultrapeer.ip}:${ultrapeer.port}", "-o", out.path)
        check(
            "gnutella: `overlay gnutella fetch` downloads the Kotlin leaf's file",
            fetched != null && out.exists() && out.readBytes().contentEquals(shared),
            "$fetched",
        )
        check("gnutella: the servent counted the upload", servent.status().uploads >= 1u)

        checkThrows<OverlayException.InvalidArgument>("gnutella: a 3-byte SHA-1 is InvalidArgument") {
            servent.search(nowUs(), "x", ByteArray(3))
        }
        checkThrows<OverlayException.NoUpload>("gnutella: uploading on a connection with no upload is NoUpload") {
            servent.upload(nowUs(), conn, ByteArray(10))
        }
        val lonely = GnutellaServent(gnutellaConfigDefault(GnutellaRole.LEAF, listen), 1u)
        checkThrows<OverlayException.NotConnected>("gnutella: a search with no connection is NotConnected") {
            lonely.search(nowUs(), "anything", null)
        }
        lonely.close()
    } finally {
        peer.stop()
        servent.close()
    }
}

inline fun ByteArray.indexOfFirst(window: Int, pred: (Int) -> Boolean): Int {
    for (i in 0..size - window) if (pred(i)) return i
    return -1
}

/** Bencodes strings, integers, lists and maps (keys sorted, as BEP 3 requires). */
fun bencode(v: Any): ByteArray = when (v) {
    is ByteArray -> "${v.size}:".toByteArray() + v
    is String -> bencode(v.toByteArray())
    is Int -> "i${v}e".toByteArray()
    is Long -> "i${v}e".toByteArray()
    is List<*> -> "l".toByteArray() + v.fold(ByteArray(0)) { a, x -> a + bencode(x!!) } + "e".toByteArray()
    is Map<*, *> -> "d".toByteArray() + v.entries.sortedBy { it.key as String }
        .fold(ByteArray(0)) { a, (k, x) -> a + bencode(k!!) + bencode(x!!) } + "e".toByteArray()
    else -> error("cannot bencode $v")
}

fun torrentPeer(session: TorrentSession, listener: ServerSocket?) = TcpPeer<TorrentEvent>(
    listener,
    { now, from -> session.accepted(now, from) },
    { now, conn -> session.connected(now, conn) },
    { now, conn, bytes -> session.received(now, conn, bytes) },
    { now, conn -> session.closed(now, conn) },
    { now ->
        when (val o = session.pollOutput(now)) {
            is TorrentOutput.Transmit -> Out.Write(o.conn, o.bytes)
            is TorrentOutput.Connect -> Out.Dial(o.conn, o.to)
            is TorrentOutput.Close -> Out.Hangup(o.conn)
            is TorrentOutput.Event -> Out.Ev(o.event)
            is TorrentOutput.Wait -> Out.Wait(o.untilUs)
        }
    },
    torrentMaxRead().toInt(),
)

fun torrentTests() {
    val pieceLength = 256 * 1024
    val content = Random(3).nextBytes(4 * pieceLength + 12345)
    val hashes = (content.indices step pieceLength).fold(ByteArray(0)) { a, at ->
        a + sha1(content.copyOfRange(at, minOf(at + pieceLength, content.size)))
    }
    val info = mapOf("name" to "kotlin.bin", "piece length" to pieceLength, "length" to content.size, "pieces" to hashes)
    val torrent = bencode(mapOf("announce" to "http://127.0.0.1:1/announce", "info" to info))
    val parsed = torrentInfo(torrent)
    check(
        "torrent: torrent_info reads the metainfo (info hash = SHA-1 of the bencoded info)",
        parsed.infoHash.contentEquals(sha1(bencode(info))) && parsed.pieceCount == 5u &&
            parsed.totalLength == content.size.toULong() && parsed.files.single().path == listOf("kotlin.bin"),
        "$parsed",
    )
    checkThrows<OverlayException.InvalidArgument>("torrent: junk is not a torrent") { torrentInfo("junk".toByteArray()) }
    check("torrent: the library's sha1 agrees with java.security.MessageDigest", dev.overlay.sha1(content).contentEquals(sha1(content)))

    fun config(id: String) = TorrentConfig(id.toByteArray(), 8u, true)
    val seed = TorrentSession(torrent, config("-OV0001-seedseedseed"), 1u)
    for (p in 0u until 5u) seed.havePiece(nowUs(), p)
    val leech = TorrentSession(torrent, config("-OV0001-leechleechle"), 2u)
    val listener = ServerSocket(0, 16, loopback)
    val seedPeer = torrentPeer(seed, listener)
    val leechPeer = torrentPeer(leech, null)
    val stored = ByteArray(content.size)
    // Storage answers on the pump threads, after the event, as a disk task would.
    val seedServe = Thread {
        while (true) {
            val e = seedPeer.events.await(15_000) { it is TorrentEvent.Read } as TorrentEvent.Read? ?: break
            val at = e.block.piece.toInt() * pieceLength + e.block.begin.toInt()
            val data = content.copyOfRange(at, at + e.block.length.toInt())
            seedPeer.later {
                // A peer may cancel a block or leave before it is read: no error.
                try {
                    seed.sendBlock(nowUs(), e.conn, e.block, data)
                } catch (_: OverlayException.NotRequested) {
                } catch (_: OverlayException.UnknownConnection) {
                }
            }
        }
    }
    val leechStore = Thread {
        while (true) {
            when (val e = leechPeer.events.await(15_000) { it is TorrentEvent.Write || it is TorrentEvent.Verify || it is TorrentEvent.Complete }) {
                is TorrentEvent.Write -> e.data.copyInto(stored, e.piece.toInt() * pieceLength + e.begin.toInt())
                is TorrentEvent.Verify -> {
                    val at = e.piece.toInt() * pieceLength
                    val ok = sha1(stored.copyOfRange(at, minOf(at + pieceLength, content.size))).contentEquals(e.hash)
                    leechPeer.later { leech.pieceChecked(nowUs(), e.piece, ok) }
                }
                else -> break
            }
        }
    }
    seedPeer.start()
    leechPeer.start()
    seedServe.start()
    leechStore.start()
    try {
        val seedAddr = sockAddr(listener.localSocketAddress)
        val conn = leech.addPeer(nowUs(), seedAddr)
        checkThrows<OverlayException.AlreadyConnected>("torrent: dialling the same peer twice is AlreadyConnected") {
            leech.addPeer(nowUs(), seedAddr)
        }
        leechStore.join(30_000)
        val status = leech.status(nowUs())
        check(
            "torrent: a Kotlin leecher downloads the torrent from a Kotlin seed over TCP",
            status.complete && stored.contentEquals(content) && status.hashFailures == 0uL,
            "$status",
        )
        check("torrent: the seed counted its upload", seed.status(nowUs()).uploaded >= content.size.toULong())
        checkThrows<OverlayException.NotAwaitingCheck>("torrent: a check of a piece not awaiting one is NotAwaitingCheck") {
            leech.pieceChecked(nowUs(), 0u, true)
        }
        checkThrows<OverlayException.InvalidArgument>("torrent: more than torrent_max_read() bytes is InvalidArgument") {
            leech.received(nowUs(), conn, ByteArray(torrentMaxRead().toInt() + 1))
        }
        checkThrows<OverlayException.UnknownConnection>("torrent: a block for a connection that does not exist is UnknownConnection") {
            seed.sendBlock(nowUs(), 12345u, TorrentBlock(0u, 0u, 16384u), ByteArray(16384))
        }
        checkThrows<OverlayException.InvalidArgument>("torrent: a 3-byte peer id is InvalidArgument") {
            TorrentSession(torrent, TorrentConfig(ByteArray(3), 8u, true), 1u)
        }
    } finally {
        seedPeer.stop()
        leechPeer.stop()
        seed.close()
        leech.close()
    }
}

fun main(args: Array<String>) {
    val opts = args.toList().chunked(2).associate { (k, v) -> k to v }
    val bin = opts.getValue("--overlay")
    val work = File(opts.getValue("--work"))
    val sections = listOf(
        "chord" to { chordTests(bin, parseAddr(opts.getValue("--chord"))) },
        "dht" to { dhtTests(bin, parseAddr(opts.getValue("--dht"))) },
        "gnutella" to { gnutellaTests(bin, parseAddr(opts.getValue("--gnutella")), work) },
        "torrent" to { torrentTests() },
    )
    for ((name, run) in sections) {
        try {
            run()
        } catch (e: Throwable) {
            check("$name: ran to the end", false, "${e::class.simpleName}: ${e.message}")
            e.printStackTrace()
        }
    }
    println("$passed passed, $failed failed")
    kotlin.system.exitProcess(if (failed == 0) 0 else 1)
}
