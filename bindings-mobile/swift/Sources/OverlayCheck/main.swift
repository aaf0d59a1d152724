// The Swift bindings against real peers: a Chord node and a DHT node, each on a real UDP
// socket pumped by a thread of its own, join a ring and a DHT of `overlay` processes,
// store and read values both ways (checked with the `overlay` command), and hit the
// error paths; a Gnutella leaf searches an ultrapeer and two torrent sessions trade a
// torrent, both over in-memory connections. Ends with `N passed, N failed`.
//
//   OverlayCheck --overlay BIN --chord ADDR --dht ADDR
//
// bindings-mobile/test.sh starts the `overlay` processes and stops them.

import Foundation
import Glibc
import Overlay

var passed = 0
var failed = 0
let checks = NSLock()

/// Records one check; pump threads call it too.
func check(_ name: String, _ ok: Bool, _ detail: @autoclosure () -> String = "") {
    checks.withLock {
        if ok { passed += 1 } else { failed += 1 }
        print((ok ? "ok   " : "FAIL ") + name + (ok ? "" : ": \(detail())"))
    }
}

/// Passes if `body` throws an `OverlayError` that `matches`.
func checkThrows(_ name: String, _ matches: (OverlayError) -> Bool, _ body: () throws -> Void) {
    do {
        try body()
        check(name, false, "no error")
    } catch let e as OverlayError {
        check(name, matches(e), "threw \(e)")
    } catch {
        check(name, false, "threw \(error)")
    }
}

func nowUs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
}

func parseAddr(_ s: String) -> SocketAddress {
    let parts = s.split(separator: ":")
    return SocketAddress(ip: String(parts[0]), port: UInt16(parts[1])!)
}

func hex(_ d: Data) -> String { d.map { String(format: "%02x", $0) }.joined() }

func unhex(_ s: String) -> Data {
    var d = Data()
    var i = s.startIndex
    while i < s.endIndex {
        let j = s.index(i, offsetBy: 2)
        d.append(UInt8(s[i..<j], radix: 16)!)
        i = j
    }
    return d
}

/// Runs the `overlay` command; its stdout, or nil if it failed or ran over 30 s.
func overlay(_ bin: String, _ args: String...) -> String? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: bin)
    p.arguments = args
    let pipe = Pipe()
    p.standardOutput = pipe
    do { try p.run() } catch { return nil }
    let killer = DispatchWorkItem { p.terminate() }
    DispatchQueue.global().asyncAfter(deadline: .now() + 30, execute: killer)
    let out = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    killer.cancel()
    return p.terminationStatus == 0 ? String(decoding: out, as: UTF8.self) : nil
}

/// One output of a datagram machine, as the pump acts on it.
enum Step<E> {
    case send(SocketAddress, Data)
    case event(E)
    case wait(UInt64?)
}

/// A UDP socket bound to 127.0.0.1 on a free port.
final class UdpSocket {
    let fd: Int32
    let port: UInt16

    init() {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        a.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        self.fd = fd
        port = UInt16(bigEndian: a.sin_port)
    }

    var addr: SocketAddress { SocketAddress(ip: "127.0.0.1", port: port) }

    func send(_ bytes: Data, to: SocketAddress) {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr(to.ip)
        a.sin_port = to.port.bigEndian
        bytes.withUnsafeBytes { b in
            _ = withUnsafePointer(to: &a) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    /// A datagram within `ms` milliseconds, or nil.
    func receive(within ms: Int) -> (SocketAddress, Data)? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, Int32(ms)) > 0 else { return nil }
        var buf = [UInt8](repeating: 0, count: 65536)
        var a = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let n = withUnsafeMutablePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buf, buf.count, 0, $0, &len) }
        }
        guard n >= 0 else { return nil }
        let ip = String(cString: inet_ntoa(a.sin_addr))
        return (SocketAddress(ip: ip, port: UInt16(bigEndian: a.sin_port)), Data(buf[0..<n]))
    }

    deinit { close(fd) }
}

/// A datagram machine on a UDP socket, pumped by a thread of its own: datagrams in,
/// outputs out until `wait`, sleep until the deadline or the next datagram (at most
/// 10 ms, so that commands from the test thread go out at once).
final class UdpPeer<E> {
    let socket = UdpSocket()
    private let input: (UInt64, SocketAddress, Data) throws -> Void
    private let next: (UInt64) throws -> Step<E>
    private let lock = NSCondition()
    private var events: [E] = []
    private var running = true
    private var thread: Thread?

    init(input: @escaping (UInt64, SocketAddress, Data) throws -> Void, next: @escaping (UInt64) throws -> Step<E>) {
        self.input = input
        self.next = next
    }

    func start() {
        let t = Thread { [self] in
            do {
                while lock.withLock({ running }) {
                    var until: UInt64? = nil
                    drain: while true {
                        switch try next(nowUs()) {
                        case let .send(to, bytes): socket.send(bytes, to: to)
                        case let .event(e): lock.withLock { events.append(e); lock.broadcast() }
                        case let .wait(u): until = u; break drain
                        }
                    }
                    let now = nowUs()
                    let ms = until.map { $0 > now ? Int(min(($0 - now) / 1000, 10)) : 0 } ?? 10
                    if let (from, bytes) = socket.receive(within: max(ms, 1)) {
                        try input(nowUs(), from, bytes)
                    }
                }
            } catch {
                // The failure shows up here, not as timeouts in the checks that follow.
                check("the pump ran without an error", false, "\(error)")
            }
        }
        thread = t
        t.start()
    }

    /// The first event matching `pred` within `ms` milliseconds (earlier ones stay).
    func await(_ ms: Int, _ pred: (E) -> Bool) -> E? {
        let deadline = Date().addingTimeInterval(Double(ms) / 1000)
        lock.lock()
        defer { lock.unlock() }
        while true {
            if let i = events.firstIndex(where: pred) { return events.remove(at: i) }
            if !lock.wait(until: deadline) { return nil }
        }
    }

    func stop() {
        lock.withLock { running = false }
        while thread?.isExecuting == true { usleep(1000) }
    }
}

func chordTests(_ bin: String, _ ring: SocketAddress) throws {
    var config = chordConfigDefault()
    config.stabilizeIntervalMs = 200
    config.fixFingersIntervalMs = 100
    var node: ChordNode!
    let peer = UdpPeer<ChordEvent>(
        input: { try node.handleDatagram(nowUs: $0, from: $1, datagram: $2) },
        next: {
            switch try node.pollOutput(nowUs: $0) {
            case let .transmit(to, datagram): return .send(to, datagram)
            case let .event(e): return .event(e)
            case let .wait(u): return .wait(u)
            }
        })
    node = try ChordNode(config: config, addr: peer.socket.addr, seed: 17)
    peer.start()
    defer { peer.stop() }
    let via = "\(ring.ip):\(ring.port)"

    let join = try node.join(nowUs: nowUs(), bootstrap: ring)
    let joined = peer.await(10_000) { if case let .joined(q, _) = $0 { return q == join }; return false }
    check("chord: joins the ring of `overlay chord join` processes", joined != nil)
    checkThrows("chord: joining twice is AlreadyMember", { if case .AlreadyMember = $0 { return true }; return false }) {
        _ = try node.join(nowUs: nowUs(), bootstrap: ring)
    }
    usleep(2_000_000)
    let status = try node.status()
    check("chord: a member with a predecessor and successors",
          status.phase == .member && status.predecessor != nil && !status.successors.isEmpty, "\(status)")

    let put = try node.put(nowUs: nowUs(), key: Data("swift-key".utf8), value: Data("from swift".utf8))
    let putDone = peer.await(10_000) {
        switch $0 {
        case let .putDone(q, _, _, _), let .failed(q, _, _): return q == put
        default: return false
        }
    }
    if case .putDone = putDone { check("chord: put from Swift completes", true) } else {
        check("chord: put from Swift completes", false, "\(String(describing: putDone))")
    }
    let got = overlay(bin, "chord", "get", "swift-key", "--via", via)
    check("chord: `overlay chord get` reads the Swift put", got?.trimmingCharacters(in: .whitespacesAndNewlines) == "from swift", "\(String(describing: got))")

    check("chord: `overlay chord put` stores a value", overlay(bin, "chord", "put", "cli-swift-key", "from the cli", "--via", via) != nil)
    let get = try node.get(nowUs: nowUs(), key: Data("cli-swift-key".utf8))
    let getDone = peer.await(10_000) {
        switch $0 {
        case let .getDone(q, _, _, _), let .failed(q, _, _): return q == get
        default: return false
        }
    }
    if case let .getDone(_, _, value, _) = getDone {
        check("chord: Swift get reads the command's put", value == Data("from the cli".utf8))
    } else {
        check("chord: Swift get reads the command's put", false, "\(String(describing: getDone))")
    }

    checkThrows("chord: a 2000-byte value is ValueTooLarge", { if case .ValueTooLarge = $0 { return true }; return false }) {
        _ = try node.put(nowUs: nowUs(), key: Data("big".utf8), value: Data(count: 2000))
    }
    checkThrows("chord: a bad address is InvalidArgument", { if case .InvalidArgument = $0 { return true }; return false }) {
        try node.handleDatagram(nowUs: nowUs(), from: SocketAddress(ip: "not-an-ip", port: 1), datagram: Data([1]))
    }
    let before = try node.status().malformed
    try node.handleDatagram(nowUs: nowUs(), from: ring, datagram: Data([1, 2, 3]))
    check("chord: a malformed datagram is dropped and counted", try node.status().malformed == before + 1)
    let idle = try ChordNode(config: config, addr: SocketAddress(ip: "127.0.0.1", port: 1), seed: 1)
    checkThrows("chord: an idle node's lookup is NotMember", { if case .NotMember = $0 { return true }; return false }) {
        _ = try idle.lookup(nowUs: nowUs(), key: Data("x".utf8))
    }

    try node.leave(nowUs: nowUs())
    check("chord: a graceful leave completes", peer.await(10_000) { if case .left = $0 { return true }; return false } != nil)
    let after = overlay(bin, "chord", "get", "swift-key", "--via", via)
    check("chord: the Swift put survives the leave", after?.trimmingCharacters(in: .whitespacesAndNewlines) == "from swift", "\(String(describing: after))")
}

func queryOf(_ e: DhtEvent) -> UInt64? {
    switch e {
    case let .bootstrapped(q, _): return q
    case let .nodes(q, _, _, _), let .peers(q, _, _, _), let .announced(q, _, _, _),
         let .item(q, _, _, _), let .stored(q, _, _, _): return q
    case let .failed(q, _): return q
    case .newId: return nil
    }
}

func dhtTests(_ bin: String, _ dht: SocketAddress) throws {
    var config = dhtConfigDefault()
    config.restrictIps = false
    var node: DhtNode!
    let peer = UdpPeer<DhtEvent>(
        input: { try node.handleDatagram(nowUs: $0, from: $1, datagram: $2) },
        next: {
            switch try node.pollOutput(nowUs: $0) {
            case let .transmit(to, datagram): return .send(to, datagram)
            case let .event(e): return .event(e)
            case let .wait(u): return .wait(u)
            }
        })
    node = try DhtNode(config: config, addr: peer.socket.addr, seed: 19)
    peer.start()
    defer { peer.stop() }
    let via = "\(dht.ip):\(dht.port)"

    let boot = try node.bootstrap(nowUs: nowUs(), nodes: [dht])
    let booted = peer.await(20_000) { queryOf($0) == boot }
    if case let .bootstrapped(_, n) = booted {
        check("dht: bootstraps from `overlay dht start` nodes", n >= 3, "\(n) nodes")
    } else {
        check("dht: bootstraps from `overlay dht start` nodes", false, "\(String(describing: booted))")
    }

    // An info hash is any 20 bytes: this one is the name padded.
    let ours = Data("swift torrent.......".utf8)
    let ann = try node.announce(nowUs: nowUs(), infoHash: ours, port: 6882)
    let announced = peer.await(20_000) { queryOf($0) == ann }
    if case let .announced(_, _, stored, _) = announced {
        check("dht: announce from Swift is stored", stored > 0)
    } else {
        check("dht: announce from Swift is stored", false, "\(String(describing: announced))")
    }
    let peers = overlay(bin, "dht", "get-peers", hex(ours), "--via", via)
    check("dht: `overlay dht get-peers` finds the Swift announce", peers?.contains("127.0.0.1:6882") == true, "\(String(describing: peers))")

    let theirs = Data("cli torrent for swft".utf8)
    check("dht: `overlay dht announce` runs", overlay(bin, "dht", "announce", hex(theirs), "--port", "40001", "--via", via) != nil)
    let gp = try node.getPeers(nowUs: nowUs(), infoHash: theirs)
    let found = peer.await(20_000) { queryOf($0) == gp }
    if case let .peers(_, _, list, _) = found {
        check("dht: Swift get_peers finds the command's announce", list.contains(SocketAddress(ip: "127.0.0.1", port: 40001)), "\(list)")
    } else {
        check("dht: Swift get_peers finds the command's announce", false, "\(String(describing: found))")
    }

    let put = try node.put(nowUs: nowUs(), value: Data("10:from swift".utf8))
    let stored = peer.await(20_000) { queryOf($0) == put.query }
    if case let .stored(_, _, n, _) = stored {
        check("dht: BEP 44 put from Swift is stored", n > 0)
    } else {
        check("dht: BEP 44 put from Swift is stored", false, "\(String(describing: stored))")
    }
    let cliGet = overlay(bin, "dht", "get", hex(put.target), "--via", via)
    check("dht: `overlay dht get` reads the Swift put", cliGet?.trimmingCharacters(in: .whitespacesAndNewlines) == "from swift", "\(String(describing: cliGet))")

    let target = overlay(bin, "dht", "put", "swift reads this", "--via", via)?
        .split(separator: "\n").first.map(String.init) ?? ""
    check("dht: `overlay dht put` prints a target", target.count == 40, target)
    if target.count == 40 {
        let get = try node.get(nowUs: nowUs(), target: unhex(target))
        let item = peer.await(20_000) { queryOf($0) == get }
        if case let .item(_, _, value, _) = item {
            check("dht: Swift get reads the command's put", value == Data("16:swift reads this".utf8), "\(String(describing: value))")
        } else {
            check("dht: Swift get reads the command's put", false, "\(String(describing: item))")
        }
    }

    checkThrows("dht: a 19-byte info hash is InvalidArgument", { if case .InvalidArgument = $0 { return true }; return false }) {
        _ = try node.getPeers(nowUs: nowUs(), infoHash: Data(count: 19))
    }
    checkThrows("dht: a put of bytes that are not bencode is BadItem", { if case .BadItem = $0 { return true }; return false }) {
        _ = try node.put(nowUs: nowUs(), value: Data("not bencode".utf8))
    }
    let lonely = try DhtNode(config: config, addr: SocketAddress(ip: "127.0.0.1", port: 2), seed: 2)
    checkThrows("dht: bootstrap from nothing is NoNodes", { if case .NoNodes = $0 { return true }; return false }) {
        _ = try lonely.bootstrap(nowUs: nowUs(), nodes: [])
    }
    let before = try node.status().malformed
    for i in 0..<100 { try node.handleDatagram(nowUs: nowUs(), from: dht, datagram: Data((0...i).map { UInt8(($0 * 37 + i) & 0xff) })) }
    let s = try node.status()
    check("dht: 100 malformed datagrams are dropped and counted", s.malformed == before + 100, "\(s)")
}

/// Bencodes a dictionary of byte strings and integers, keys sorted (BEP 3).
func bencode(_ dict: [(String, Any)]) -> Data {
    var out = Data("d".utf8)
    for (k, v) in dict.sorted(by: { $0.0 < $1.0 }) {
        out += Data("\(k.utf8.count):\(k)".utf8)
        switch v {
        case let i as Int: out += Data("i\(i)e".utf8)
        case let d as Data: out += Data("\(d.count):".utf8) + d
        case let s as String: out += Data("\(s.utf8.count):\(s)".utf8)
        case let sub as [(String, Any)]: out += bencode(sub)
        default: fatalError("cannot bencode \(v)")
        }
    }
    return out + Data("e".utf8)
}

/// Two torrent sessions, a seed and a leecher, trading over an in-memory connection: the
/// leecher's dial is accepted by the seed, bytes cross at most `torrentMaxRead()` at a
/// time, and storage answers `Write`, `Verify` and `Read` as an app's would.
func torrentTests() throws {
    let pieceLength = 32768
    let content = Data((0..<(5 * pieceLength + 1000)).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ $0 / 251) })
    var hashes = Data()
    for at in stride(from: 0, to: content.count, by: pieceLength) {
        hashes += sha1(data: content.subdata(in: at..<min(at + pieceLength, content.count)))
    }
    let info: [(String, Any)] = [("length", content.count), ("name", "swift.bin"), ("piece length", pieceLength), ("pieces", hashes)]
    let torrent = bencode([("info", info)])
    let parsed = try torrentInfo(torrent: torrent)
    check("torrent: torrent_info reads the metainfo (info hash = SHA-1 of the bencoded info)",
          parsed.infoHash == sha1(data: bencode(info)) && parsed.pieceCount == 6 && parsed.totalLength == UInt64(content.count),
          "\(parsed)")
    check("torrent: sha1 of \"abc\" is FIPS 180's a9993e36...", hex(sha1(data: Data("abc".utf8))) == "a9993e364706816aba3e25717850c26c9cd0d89d")

    let seed = try TorrentSession(torrent: torrent, config: TorrentConfig(peerId: Data("-OV0001-swift-seed00".utf8), maxConnections: 8, serve: true), seed: 1)
    for p in 0..<UInt32(6) { try seed.havePiece(nowUs: nowUs(), piece: p) }
    let leech = try TorrentSession(torrent: torrent, config: TorrentConfig(peerId: Data("-OV0001-swift-leech0".utf8), maxConnections: 8, serve: true), seed: 2)
    let seedAddr = SocketAddress(ip: "127.0.0.1", port: 6881)
    let leechConn = try leech.addPeer(nowUs: nowUs(), to: seedAddr)
    checkThrows("torrent: dialling the same peer twice is AlreadyConnected", { if case .AlreadyConnected = $0 { return true }; return false }) {
        _ = try leech.addPeer(nowUs: nowUs(), to: seedAddr)
    }
    var seedConn: UInt64 = 0
    var toSeed = Data(), toLeech = Data()
    var stored = Data(count: content.count)
    var complete = false
    let maxRead = Int(torrentMaxRead())
    for _ in 0..<100_000 where !complete {
        leech: while true {
            switch try leech.pollOutput(nowUs: nowUs()) {
            case .connect:
                seedConn = try seed.accepted(nowUs: nowUs(), peer: SocketAddress(ip: "127.0.0.1", port: 50000))
                try leech.connected(nowUs: nowUs(), conn: leechConn)
            case let .transmit(_, bytes): toSeed += bytes
            case let .event(.write(piece, begin, data)):
                let at = Int(piece) * pieceLength + Int(begin)
                stored.replaceSubrange(at..<at + data.count, with: data)
            case let .event(.verify(piece, hash)):
                let at = Int(piece) * pieceLength
                let ok = sha1(data: stored.subdata(in: at..<min(at + pieceLength, content.count))) == hash
                try leech.pieceChecked(nowUs: nowUs(), piece: piece, passed: ok)
            case .event(.complete): complete = true
            case .wait: break leech
            default: continue
            }
        }
        // Blocks go one at a time: each read is answered once the outputs are drained.
        var reads: [(UInt64, TorrentBlock)] = []
        seed: while true {
            switch try seed.pollOutput(nowUs: nowUs()) {
            case let .transmit(_, bytes): toLeech += bytes
            case let .event(.read(conn, block)): reads.append((conn, block))
            case .wait:
                guard !reads.isEmpty else { break seed }
                let (conn, block) = reads.removeFirst()
                let at = Int(block.piece) * pieceLength + Int(block.begin)
                try seed.sendBlock(nowUs: nowUs(), conn: conn, block: block, data: content.subdata(in: at..<at + Int(block.length)))
            default: continue
            }
        }
        if !toSeed.isEmpty {
            let n = min(maxRead, toSeed.count)
            try seed.received(nowUs: nowUs(), conn: seedConn, bytes: toSeed.prefix(n))
            toSeed = toSeed.dropFirst(n)
        }
        if !toLeech.isEmpty {
            let n = min(maxRead, toLeech.count)
            try leech.received(nowUs: nowUs(), conn: leechConn, bytes: toLeech.prefix(n))
            toLeech = toLeech.dropFirst(n)
        }
    }
    let status = try leech.status(nowUs: nowUs())
    check("torrent: a Swift leecher downloads the torrent from a Swift seed", complete && stored == content && status.hashFailures == 0, "\(status)")
    check("torrent: the seed counted its upload", try seed.status(nowUs: nowUs()).uploaded >= UInt64(content.count))
    checkThrows("torrent: more than torrent_max_read() bytes is InvalidArgument", { if case .InvalidArgument = $0 { return true }; return false }) {
        try leech.received(nowUs: nowUs(), conn: leechConn, bytes: Data(count: maxRead + 1))
    }
    checkThrows("torrent: a check of a piece not awaiting one is NotAwaitingCheck", { if case .NotAwaitingCheck = $0 { return true }; return false }) {
        try leech.pieceChecked(nowUs: nowUs(), piece: 0, passed: true)
    }
    checkThrows("torrent: junk is not a torrent", { if case .InvalidArgument = $0 { return true }; return false }) {
        _ = try torrentInfo(torrent: Data("junk".utf8))
    }
}

/// A Gnutella leaf and an ultrapeer over an in-memory connection: the leaf's dial is
/// accepted by the ultrapeer, the 0.6 handshake runs, and a search from the leaf finds the
/// file the ultrapeer shares.
func gnutellaTests() throws {
    let upAddr = SocketAddress(ip: "127.0.0.1", port: 6346)
    let leafAddr = SocketAddress(ip: "127.0.0.1", port: 6347)
    let up = try GnutellaServent(config: gnutellaConfigDefault(role: .ultrapeer, listen: upAddr), seed: 1)
    let file = Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31) })
    try up.share(nowUs: nowUs(), files: [GnutellaFile(index: 3, size: UInt64(file.count), name: "swift song.ogg", sha1: sha1(data: file))])
    let leaf = try GnutellaServent(config: gnutellaConfigDefault(role: .leaf, listen: leafAddr), seed: 2)
    let leafConn = try leaf.connect(nowUs: nowUs(), to: upAddr)
    var upConn: UInt64 = 0
    var toUp = Data(), toLeaf = Data()
    var leafEvents: [GnutellaEvent] = [], upEvents: [GnutellaEvent] = []
    func pump() throws {
        for _ in 0..<50 {
            leaf: while true {
                switch try leaf.pollOutput(nowUs: nowUs()) {
                case .connect:
                    upConn = try up.accepted(nowUs: nowUs(), peer: leafAddr)
                    try leaf.connected(nowUs: nowUs(), conn: leafConn)
                case let .transmit(_, bytes): toUp += bytes
                case let .event(e): leafEvents.append(e)
                case .close: continue
                case .wait: break leaf
                }
            }
            up: while true {
                switch try up.pollOutput(nowUs: nowUs()) {
                case let .transmit(_, bytes): toLeaf += bytes
                case let .event(e): upEvents.append(e)
                case .connect, .close: continue  // no other servent to dial here
                case .wait: break up
                }
            }
            if !toUp.isEmpty { try up.received(nowUs: nowUs(), conn: upConn, bytes: toUp); toUp = Data() }
            if !toLeaf.isEmpty { try leaf.received(nowUs: nowUs(), conn: leafConn, bytes: toLeaf); toLeaf = Data() }
        }
    }
    try pump()
    check("gnutella: a Swift leaf and ultrapeer finish the 0.6 handshake",
          leafEvents.contains { if case let .connected(c, _, role) = $0 { return c == leafConn && role == .ultrapeer }; return false }
              && upEvents.contains { if case let .connected(_, _, role) = $0 { return role == .leaf }; return false },
          "\(leafEvents) \(upEvents)")
    let query = try leaf.search(nowUs: nowUs(), criteria: "swift song", sha1: nil)
    try pump()
    let hit = leafEvents.compactMap { e -> GnutellaResult? in
        if case let .hits(q, _, _, _, _, results) = e, q == query { return results.first }
        return nil
    }.first
    check("gnutella: a search from the leaf finds the ultrapeer's file, with its SHA-1",
          hit == GnutellaResult(index: 3, size: UInt64(file.count), name: "swift song.ogg", sha1: sha1(data: file)),
          "\(String(describing: hit))")
    check("gnutella: the ultrapeer lists the leaf", try up.status().peers.map(\.role) == [.leaf])
    checkThrows("gnutella: a 3-byte SHA-1 is InvalidArgument", { if case .InvalidArgument = $0 { return true }; return false }) {
        _ = try leaf.search(nowUs: nowUs(), criteria: "x", sha1: Data(count: 3))
    }
    checkThrows("gnutella: uploading where no upload runs is NoUpload", { if case .NoUpload = $0 { return true }; return false }) {
        try leaf.upload(nowUs: nowUs(), conn: leafConn, bytes: Data(count: 10))
    }
    let lonely = try GnutellaServent(config: gnutellaConfigDefault(role: .leaf, listen: leafAddr), seed: 3)
    checkThrows("gnutella: a search with no connection is NotConnected", { if case .NotConnected = $0 { return true }; return false }) {
        _ = try lonely.search(nowUs: nowUs(), criteria: "anything", sha1: nil)
    }
}

var opts: [String: String] = [:]
let argv = CommandLine.arguments
for i in stride(from: 1, to: argv.count - 1, by: 2) { opts[argv[i]] = argv[i + 1] }
let bin = opts["--overlay"]!
for (name, run) in [("chord", { try chordTests(bin, parseAddr(opts["--chord"]!)) }),
                    ("dht", { try dhtTests(bin, parseAddr(opts["--dht"]!)) }),
                    ("gnutella", { try gnutellaTests() }),
                    ("torrent", { try torrentTests() })] as [(String, () throws -> Void)] {
    do { try run() } catch { check("\(name): ran to the end", false, "\(error)") }
}
print("\(passed) passed, \(failed) failed")
exit(failed == 0 ? 0 : 1)
