//! KRPC, the Mainline DHT's wire format (BEP 5), byte for byte: bencoded dictionaries with a
//! transaction id `t`, a type `y` (`q`, `r` or `e`) and the query's `a` / response's `r`.
//!
//! Also spoken: BEP 32 (`nodes6`, `want`), BEP 42 (`ip`, the requester's address in
//! responses), BEP 43 (`ro`, read-only nodes) and BEP 44's `get` / `put` for immutable items.
//! Decoding validates everything the machine relies on (id and info-hash lengths, compact
//! lists that are whole multiples of their stride, ports) and borrows the rest.

use super::config::MAX_K;
use crate::bencode::{self, Dict, Encoder, List};
use crate::{Id, PeerAddr};

/// Our client version, sent as `v` (BEP 20 style: two letters and two version bytes).
pub const VERSION: &[u8; 4] = b"OV\x00\x01";
/// Bytes per IPv4 compact node: id, address, port.
pub const NODE_V4: usize = 26;
/// Bytes per IPv6 compact node (BEP 32).
pub const NODE_V6: usize = 38;

/// BEP 5's error codes.
pub mod code {
    /// "Generic Error".
    pub const GENERIC: i64 = 201;
    /// "Server Error".
    pub const SERVER: i64 = 202;
    /// "Protocol Error, such as a malformed packet, invalid arguments, or bad token".
    pub const PROTOCOL: i64 = 203;
    /// "Method Unknown".
    pub const METHOD_UNKNOWN: i64 = 204;
    /// BEP 44: "message (v field) too big".
    pub const MESSAGE_TOO_BIG: i64 = 205;
}

/// A decoded KRPC message.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    /// The transaction id, echoed in the response.
    pub tid: &'a [u8],
    /// What it says.
    pub body: Body<'a>,
    /// BEP 42: in a response, our address as the responder saw it.
    pub ip: Option<PeerAddr>,
    /// The sender's client version, if it sent one.
    pub version: Option<&'a [u8]>,
}

/// The three kinds of KRPC message.
#[derive(Clone, Copy, Debug)]
pub enum Body<'a> {
    /// A query (`y = q`).
    Query {
        /// The querying node's id.
        sender: Id,
        /// BEP 43: the sender is read-only; do not add it to the table.
        read_only: bool,
        /// BEP 32: which address families the sender wants nodes of.
        want: Want,
        /// The method and its arguments.
        query: Query<'a>,
    },
    /// A response (`y = r`).
    Response(Response<'a>),
    /// An error (`y = e`).
    Error {
        /// The error code (201-204, BEP 44 adds more).
        code: i64,
        /// The message.
        message: &'a [u8],
    },
}

/// BEP 32's `want`: the address families of nodes the requester wants. Neither set means
/// "the family of the address the query came from".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Want {
    /// `n4`: IPv4 nodes.
    pub v4: bool,
    /// `n6`: IPv6 nodes.
    pub v6: bool,
}

/// A query's method and arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query<'a> {
    /// `ping`.
    Ping,
    /// `find_node`.
    FindNode {
        /// The id sought.
        target: Id,
    },
    /// `get_peers`.
    GetPeers {
        /// The torrent.
        info_hash: Id,
    },
    /// `announce_peer`.
    AnnouncePeer {
        /// The torrent.
        info_hash: Id,
        /// The port the peer listens on (ignored when `implied_port`).
        port: u16,
        /// Use the UDP source port instead (for peers behind NATs).
        implied_port: bool,
        /// The token from an earlier `get_peers` response.
        token: &'a [u8],
    },
    /// BEP 44 `get`.
    Get {
        /// SHA-1 of the item (immutable) or of the key and salt (mutable).
        target: Id,
    },
    /// BEP 44 `put`.
    Put {
        /// The token from an earlier `get` response.
        token: &'a [u8],
        /// `v`, exactly as bencoded.
        value: &'a [u8],
        /// Whether it is a mutable item (has a public key `k`).
        mutable: bool,
    },
    /// A method this node does not know (answered with error 204).
    Unknown {
        /// Its name.
        method: &'a [u8],
    },
}

/// A response's fields; which are present depends on the query it answers.
#[derive(Clone, Copy, Debug)]
pub struct Response<'a> {
    /// The responder's id.
    pub id: Id,
    /// Compact IPv4 nodes (`nodes`).
    pub nodes: CompactNodes<'a>,
    /// Compact IPv6 nodes (`nodes6`, BEP 32).
    pub nodes6: CompactNodes<'a>,
    /// Compact peers (`values` of `get_peers`).
    pub values: Option<List<'a>>,
    /// A write token (`get_peers`, `get`).
    pub token: Option<&'a [u8]>,
    /// A BEP 44 item's `v`, exactly as bencoded.
    pub value: Option<&'a [u8]>,
}

/// A validated run of compact node infos: 20-byte id, then address and big-endian port.
#[derive(Clone, Copy, Debug, Default)]
pub struct CompactNodes<'a> {
    bytes: &'a [u8],
    stride: usize,
}

impl<'a> CompactNodes<'a> {
    /// The nodes.
    pub fn iter(&self) -> impl Iterator<Item = (Id, PeerAddr)> + 'a {
        self.bytes.chunks_exact(self.stride.max(1)).map(move |c| {
            let mut id = Id::ZERO;
            id.0.copy_from_slice(&c[..20]);
            (
                id,
                compact_addr(&c[20..]).unwrap_or(PeerAddr::v4([0; 4], 0)),
            )
        })
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// A compact peer address: 4 or 16 octets and a big-endian port.
pub fn compact_addr(b: &[u8]) -> Option<PeerAddr> {
    match b.len() {
        6 => Some(PeerAddr::v4(
            [b[0], b[1], b[2], b[3]],
            u16::from_be_bytes([b[4], b[5]]),
        )),
        18 => {
            let mut ip = [0; 16];
            ip.copy_from_slice(&b[..16]);
            Some(PeerAddr::v6(ip, u16::from_be_bytes([b[16], b[17]])))
        }
        _ => None,
    }
}

/// Writes `a` in compact form; returns the bytes used (6 or 18).
pub fn write_compact(a: PeerAddr, out: &mut [u8; 18]) -> usize {
    let mut canon = [0; 18];
    let n = a.write_canonical(&mut canon);
    out[..n].copy_from_slice(&canon[..n]);
    n
}

/// Why a datagram is not a KRPC message this node can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not valid bencode.
    Bencode(bencode::Error),
    /// Valid bencode, but a key is missing, of the wrong type or length.
    Invalid(&'static str),
}

/// A message that failed to decode, and, if it was recognisably a query, its transaction
/// id so that it can be answered with error 203.
#[derive(Clone, Copy, Debug)]
pub struct Malformed<'a> {
    /// What was wrong.
    pub error: DecodeError,
    /// The transaction id of a query, to answer with a protocol error.
    pub query_tid: Option<&'a [u8]>,
}

fn id_of(b: Option<&[u8]>, what: &'static str) -> Result<Id, DecodeError> {
    let b = b.ok_or(DecodeError::Invalid(what))?;
    let mut id = Id::ZERO;
    if b.len() != 20 {
        return Err(DecodeError::Invalid(what));
    }
    id.0.copy_from_slice(b);
    Ok(id)
}

fn nodes_of<'a>(b: Option<&'a [u8]>, stride: usize) -> Result<CompactNodes<'a>, DecodeError> {
    match b {
        None => Ok(CompactNodes::default()),
        Some(b) if b.len() % stride == 0 => Ok(CompactNodes { bytes: b, stride }),
        Some(_) => Err(DecodeError::Invalid("compact nodes length")),
    }
}

/// Decodes one datagram.
pub fn decode(datagram: &[u8]) -> Result<Message<'_>, Malformed<'_>> {
    let malformed = |error| Malformed {
        error,
        query_tid: None,
    };
    let top = bencode::decode(datagram).map_err(|e| malformed(DecodeError::Bencode(e)))?;
    let Some(top) = top.as_dict() else {
        return Err(malformed(DecodeError::Invalid("not a dictionary")));
    };
    let tid = top
        .get_bytes(b"t")
        .ok_or(malformed(DecodeError::Invalid("t")))?;
    let kind = top
        .get_bytes(b"y")
        .ok_or(malformed(DecodeError::Invalid("y")))?;
    let version = top.get_bytes(b"v");
    let body = match kind {
        b"q" => decode_query(&top).map_err(|error| Malformed {
            error,
            query_tid: Some(tid),
        })?,
        b"r" => decode_response(&top).map_err(malformed)?,
        b"e" => {
            let e = top
                .get_list(b"e")
                .ok_or(malformed(DecodeError::Invalid("e")))?;
            let mut it = e.iter();
            let code = it.next().and_then(|v| v.as_int());
            let message = it.next().and_then(|v| v.as_bytes());
            match (code, message) {
                (Some(code), Some(message)) => Body::Error { code, message },
                _ => return Err(malformed(DecodeError::Invalid("e"))),
            }
        }
        _ => return Err(malformed(DecodeError::Invalid("y"))),
    };
    let ip = match &body {
        Body::Response(_) => top.get_bytes(b"ip").and_then(compact_addr),
        _ => None,
    };
    Ok(Message {
        tid,
        body,
        ip,
        version,
    })
}

fn decode_query<'a>(top: &Dict<'a>) -> Result<Body<'a>, DecodeError> {
    let method = top.get_bytes(b"q").ok_or(DecodeError::Invalid("q"))?;
    let a = top.get_dict(b"a").ok_or(DecodeError::Invalid("a"))?;
    let sender = id_of(a.get_bytes(b"id"), "id")?;
    let read_only = top.get_int(b"ro") == Some(1);
    let mut want = Want::default();
    if let Some(list) = a.get_list(b"want") {
        for w in list.iter() {
            match w.as_bytes() {
                Some(b"n4") => want.v4 = true,
                Some(b"n6") => want.v6 = true,
                _ => {}
            }
        }
    }
    let query = match method {
        b"ping" => Query::Ping,
        b"find_node" => Query::FindNode {
            target: id_of(a.get_bytes(b"target"), "target")?,
        },
        b"get_peers" => Query::GetPeers {
            info_hash: id_of(a.get_bytes(b"info_hash"), "info_hash")?,
        },
        b"announce_peer" => {
            let implied_port = a.get_int(b"implied_port").is_some_and(|v| v != 0);
            let port = match a.get_int(b"port") {
                Some(p) => u16::try_from(p).map_err(|_| DecodeError::Invalid("port"))?,
                None if implied_port => 0,
                None => return Err(DecodeError::Invalid("port")),
            };
            Query::AnnouncePeer {
                info_hash: id_of(a.get_bytes(b"info_hash"), "info_hash")?,
                port,
                implied_port,
                token: a.get_bytes(b"token").ok_or(DecodeError::Invalid("token"))?,
            }
        }
        b"get" => Query::Get {
            target: id_of(a.get_bytes(b"target"), "target")?,
        },
        b"put" => Query::Put {
            token: a.get_bytes(b"token").ok_or(DecodeError::Invalid("token"))?,
            value: a.get(b"v").ok_or(DecodeError::Invalid("v"))?.raw(),
            mutable: a.get(b"k").is_some(),
        },
        method => Query::Unknown { method },
    };
    Ok(Body::Query {
        sender,
        read_only,
        want,
        query,
    })
}

fn decode_response<'a>(top: &Dict<'a>) -> Result<Body<'a>, DecodeError> {
    let r = top.get_dict(b"r").ok_or(DecodeError::Invalid("r"))?;
    Ok(Body::Response(Response {
        id: id_of(r.get_bytes(b"id"), "id")?,
        nodes: nodes_of(r.get_bytes(b"nodes"), NODE_V4)?,
        nodes6: nodes_of(r.get_bytes(b"nodes6"), NODE_V6)?,
        values: r.get_list(b"values"),
        token: r.get_bytes(b"token"),
        value: r.get(b"v").map(|v| v.raw()),
    }))
}

/// The compact peers in a `values` list; entries of the wrong length are skipped.
pub fn peers<'a>(values: &List<'a>) -> impl Iterator<Item = PeerAddr> + 'a {
    values
        .iter()
        .filter_map(|v| v.as_bytes().and_then(compact_addr))
}

// ----- encoding -----

/// A query this node sends.
#[derive(Clone, Copy, Debug)]
pub enum OutQuery<'x> {
    /// `ping`.
    Ping,
    /// `find_node`.
    FindNode(Id),
    /// `get_peers`.
    GetPeers(Id),
    /// `announce_peer`.
    AnnouncePeer {
        /// The torrent.
        info_hash: Id,
        /// Our peer port.
        port: u16,
        /// Ask for the UDP source port instead.
        implied_port: bool,
        /// The token the node gave us.
        token: &'x [u8],
    },
    /// BEP 44 `get`.
    Get(Id),
    /// BEP 44 `put` of an immutable item.
    Put {
        /// The token the node gave us.
        token: &'x [u8],
        /// `v`, bencoded.
        value: &'x [u8],
    },
}

impl OutQuery<'_> {
    fn method(&self) -> &'static [u8] {
        match self {
            OutQuery::Ping => b"ping",
            OutQuery::FindNode(_) => b"find_node",
            OutQuery::GetPeers(_) => b"get_peers",
            OutQuery::AnnouncePeer { .. } => b"announce_peer",
            OutQuery::Get(_) => b"get",
            OutQuery::Put { .. } => b"put",
        }
    }
}

/// Encodes a query into `buf`; returns the bytes written.
pub fn write_query(
    buf: &mut [u8],
    tid: &[u8],
    own: Id,
    read_only: bool,
    query: &OutQuery<'_>,
) -> Result<usize, bencode::BufferFull> {
    let mut e = Encoder::new(buf);
    e.dict()?.bytes(b"a")?.dict()?.bytes(b"id")?.bytes(&own.0)?;
    // Keys in sorted order, as bencode requires.
    match *query {
        OutQuery::Ping => {}
        OutQuery::FindNode(target) | OutQuery::Get(target) => {
            e.bytes(b"target")?.bytes(&target.0)?;
        }
        OutQuery::GetPeers(info_hash) => {
            e.bytes(b"info_hash")?.bytes(&info_hash.0)?;
        }
        OutQuery::AnnouncePeer {
            info_hash,
            port,
            implied_port,
            token,
        } => {
            e.bytes(b"implied_port")?.int(implied_port as i64)?;
            e.bytes(b"info_hash")?.bytes(&info_hash.0)?;
            e.bytes(b"port")?.int(port as i64)?;
            e.bytes(b"token")?.bytes(token)?;
        }
        OutQuery::Put { token, value } => {
            e.bytes(b"token")?.bytes(token)?;
            e.bytes(b"v")?.raw(value)?;
        }
    }
    e.end()?;
    e.bytes(b"q")?.bytes(query.method())?;
    if read_only {
        e.bytes(b"ro")?.int(1)?;
    }
    e.bytes(b"t")?.bytes(tid)?;
    e.bytes(b"v")?.bytes(VERSION)?;
    e.bytes(b"y")?.bytes(b"q")?;
    e.end()?;
    Ok(e.len())
}

/// The fields of a response this node sends.
#[derive(Clone, Copy, Debug, Default)]
pub struct OutResponse<'x> {
    /// Nodes for `nodes` (IPv4) and `nodes6` (IPv6), closest first.
    pub nodes: &'x [(Id, PeerAddr)],
    /// Which families to include.
    pub want: Want,
    /// A write token.
    pub token: Option<&'x [u8]>,
    /// `values`: peers of the torrent asked about.
    pub values: &'x [PeerAddr],
    /// A BEP 44 item's `v`, bencoded.
    pub value: Option<&'x [u8]>,
}

/// Encodes a response into `buf`: our id, BEP 42's `ip` (the requester's address as we
/// see it), and `fields`.
pub fn write_response(
    buf: &mut [u8],
    tid: &[u8],
    own: Id,
    requester: PeerAddr,
    fields: &OutResponse<'_>,
) -> Result<usize, bencode::BufferFull> {
    let mut e = Encoder::new(buf);
    let mut compact = [0; 18];
    let n = write_compact(requester, &mut compact);
    e.dict()?.bytes(b"ip")?.bytes(&compact[..n])?;
    e.bytes(b"r")?.dict()?.bytes(b"id")?.bytes(&own.0)?;
    for (key, v6, stride) in [(&b"nodes"[..], false, NODE_V4), (b"nodes6", true, NODE_V6)] {
        let wanted = if v6 { fields.want.v6 } else { fields.want.v4 };
        let mut run = [0; MAX_K * NODE_V6];
        let mut len = 0;
        for (id, a) in fields.nodes.iter().filter(|(_, a)| a.is_v6() == v6) {
            let Some(slot) = run.get_mut(len..len + stride) else {
                break;
            };
            slot[..20].copy_from_slice(&id.0);
            write_compact(*a, &mut compact);
            slot[20..].copy_from_slice(&compact[..stride - 20]);
            len += stride;
        }
        if wanted && len > 0 {
            e.bytes(key)?.bytes(&run[..len])?;
        }
    }
    if let Some(token) = fields.token {
        e.bytes(b"token")?.bytes(token)?;
    }
    if let Some(value) = fields.value {
        e.bytes(b"v")?.raw(value)?;
    }
    if !fields.values.is_empty() {
        e.bytes(b"values")?.list()?;
        for a in fields.values {
            let n = write_compact(*a, &mut compact);
            e.bytes(&compact[..n])?;
        }
        e.end()?;
    }
    e.end()?;
    e.bytes(b"t")?.bytes(tid)?;
    e.bytes(b"v")?.bytes(VERSION)?;
    e.bytes(b"y")?.bytes(b"r")?;
    e.end()?;
    Ok(e.len())
}

/// Encodes an error into `buf`.
pub fn write_error(
    buf: &mut [u8],
    tid: &[u8],
    code: i64,
    message: &str,
) -> Result<usize, bencode::BufferFull> {
    let mut e = Encoder::new(buf);
    e.dict()?
        .bytes(b"e")?
        .list()?
        .int(code)?
        .bytes(message.as_bytes())?;
    e.end()?;
    e.bytes(b"t")?.bytes(tid)?;
    e.bytes(b"v")?.bytes(VERSION)?;
    e.bytes(b"y")?.bytes(b"e")?;
    e.end()?;
    Ok(e.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: Id = Id(*b"abcdefghij0123456789");
    const OTHER: Id = Id(*b"mnopqrstuvwxyz123456");

    fn query(buf: &mut [u8], q: OutQuery<'_>) -> usize {
        write_query(buf, b"aa", ID, false, &q).unwrap()
    }

    /// BEP 5's example queries, byte for byte, but for our `v` key.
    #[test]
    fn bep5_example_queries_encode_byte_for_byte() {
        let mut buf = [0; 512];
        let cases: [(OutQuery<'_>, &[u8]); 4] = [
            (OutQuery::Ping, b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa"),
            (
                OutQuery::FindNode(OTHER),
                b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa",
            ),
            (
                OutQuery::GetPeers(OTHER),
                b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa",
            ),
            (
                OutQuery::AnnouncePeer {
                    info_hash: OTHER,
                    port: 6881,
                    implied_port: true,
                    token: b"aoeusnth",
                },
                b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa",
            ),
        ];
        for (q, expected) in cases {
            let n = query(&mut buf, q);
            let (head, tail) = buf[..n].split_at(expected.len());
            assert_eq!(
                head,
                expected,
                "{}",
                core::str::from_utf8(&buf[..n]).unwrap()
            );
            assert_eq!(tail, b"1:v4:OV\x00\x011:y1:qe");
        }
    }

    #[test]
    fn bep5_example_queries_decode() {
        let m = decode(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe").unwrap();
        assert_eq!(m.tid, b"aa");
        let Body::Query { sender, query, .. } = m.body else {
            panic!()
        };
        assert_eq!((sender, query), (ID, Query::Ping));
        let m = decode(b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe").unwrap();
        let Body::Query { query, .. } = m.body else {
            panic!()
        };
        assert_eq!(
            query,
            Query::AnnouncePeer {
                info_hash: OTHER,
                port: 6881,
                implied_port: true,
                token: b"aoeusnth"
            }
        );
        // BEP 5's error example.
        let m = decode(b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee").unwrap();
        assert!(matches!(
            m.body,
            Body::Error {
                code: 201,
                message: b"A Generic Error Ocurred"
            }
        ));
    }

    #[test]
    fn responses_round_trip_with_nodes_values_token_and_bep42_ip() {
        let requester = PeerAddr::v4([1, 2, 3, 4], 0x1ae1);
        let nodes = [
            (OTHER, PeerAddr::v4([10, 0, 0, 9], 6881)),
            (
                ID,
                PeerAddr::v6([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 7),
            ),
        ];
        let values = [
            PeerAddr::v4([5, 6, 7, 8], 9),
            PeerAddr::v4([9, 9, 9, 9], 10),
        ];
        let mut buf = [0; 512];
        let n = write_response(
            &mut buf,
            b"xy",
            ID,
            requester,
            &OutResponse {
                nodes: &nodes,
                want: Want { v4: true, v6: true },
                token: Some(b"tok"),
                values: &values,
                value: Some(b"12:Hello World!"),
            },
        )
        .unwrap();
        let m = decode(&buf[..n]).unwrap();
        assert_eq!(m.tid, b"xy");
        assert_eq!(m.ip, Some(requester));
        assert_eq!(m.version, Some(&VERSION[..]));
        let Body::Response(r) = m.body else { panic!() };
        assert_eq!(r.id, ID);
        assert!(r.nodes.iter().eq([nodes[0]]));
        assert!(r.nodes6.iter().eq([nodes[1]]));
        assert!(peers(&r.values.unwrap()).eq(values));
        assert_eq!(r.token, Some(&b"tok"[..]));
        assert_eq!(r.value, Some(&b"12:Hello World!"[..]));
        // The IPv4 part is BEP 5's compact form: id, 4 octets, big-endian port.
        let pos = buf[..n].windows(7).position(|w| w == b"5:nodes").unwrap();
        assert_eq!(&buf[pos + 7..pos + 10], b"26:");
        assert_eq!(&buf[pos + 30..pos + 36], &[10, 0, 0, 9, 0x1a, 0xe1]);
    }

    #[test]
    fn malformed_messages_are_errors_and_queries_keep_their_tid() {
        for bad in [
            &b""[..],
            b"i1e",
            b"d1:t2:aae",
            b"d1:t2:aa1:y1:re",
            b"d1:rd2:id3:abce1:t2:aa1:y1:re",
            b"d1:rd2:id20:abcdefghij01234567895:nodes3:abce1:t2:aa1:y1:re",
            b"d1:eli201ee1:t2:aa1:y1:ee",
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
        let e = decode(b"d1:ad2:id2:abe1:q4:ping1:t2:zz1:y1:qe").unwrap_err();
        assert_eq!(e.query_tid, Some(&b"zz"[..]));
        let e = decode(b"d1:ad2:id20:abcdefghij01234567894:porti70000e9:info_hash20:mnopqrstuvwxyz1234565:token1:xe1:q13:announce_peer1:t2:zz1:y1:qe").unwrap_err();
        assert_eq!(e.error, DecodeError::Invalid("port"));
        let m = decode(b"d1:ad2:id20:abcdefghij0123456789e1:q9:vote_item1:t2:aa1:y1:qe").unwrap();
        assert!(matches!(
            m.body,
            Body::Query {
                query: Query::Unknown {
                    method: b"vote_item"
                },
                ..
            }
        ));
    }

    #[test]
    fn errors_encode_as_bep5_shows() {
        let mut buf = [0; 128];
        let n = write_error(&mut buf, b"aa", 201, "A Generic Error Ocurred").unwrap();
        assert_eq!(
            &buf[..n],
            b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:v4:OV\x00\x011:y1:ee"
        );
    }
}
