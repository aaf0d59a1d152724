//! Torrent peers on loopback TCP with their pieces in files: a leecher downloads from a
//! seed that found the whole file in its folder, checks every piece on disk, and ends with
//! the seed's bytes; a seed whose file gets corrupted under it is banned for the blocks it
//! sends, and the download still ends right.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use overlay_core::bittorrent::metainfo::{FileSpec, write_multi, write_single};
use overlay_core::bittorrent::session::CloseReason;
use overlay_node::bittorrent::{Notice, TorrentPeer};
use sha1::{Digest, Sha1};

const PIECE: usize = 256 * 1024;
const LOCAL: &str = "127.0.0.1:0";

fn root(test: &str) -> PathBuf {
    std::env::temp_dir().join(format!("overlay-bt-{test}-{}", std::process::id()))
}

/// A fresh folder under the system's temporary directory.
fn folder(test: &str, name: &str) -> PathBuf {
    let dir = root(test).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `len` bytes that differ from piece to piece, and the torrent of them named `name`.
fn content(len: usize, name: &str) -> (Vec<u8>, Vec<u8>) {
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let pieces: Vec<u8> = data.chunks(PIECE).flat_map(Sha1::digest).collect();
    let mut out = vec![0; 4096 + pieces.len()];
    let meta = write_single(
        &mut out,
        name.as_bytes(),
        PIECE as u64,
        &pieces,
        len as u64,
        None,
    )
    .unwrap();
    let torrent = meta.raw().to_vec();
    (data, torrent)
}

async fn start(torrent: &[u8], dir: &Path, seed: u64) -> TorrentPeer {
    let bind: SocketAddr = LOCAL.parse().unwrap();
    TorrentPeer::start(torrent.to_vec(), dir, bind, seed)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bep3_a_leecher_downloads_from_a_seed_into_its_files() {
    let (data, torrent) = content(3 * PIECE + 12_345, "song.ogg");
    let seed_dir = folder("leech", "seed");
    std::fs::write(seed_dir.join("song.ogg"), &data).unwrap();
    let seed = start(&torrent, &seed_dir, 1).await;
    // The seed found every piece on disk.
    assert_eq!(seed.progress().await.unwrap(), (4, 4));

    let leech_dir = folder("leech", "leech");
    let leech = start(&torrent, &leech_dir, 2).await;
    assert_eq!(leech.progress().await.unwrap(), (0, 4));
    let mut notices = leech.notices();
    leech.add_peer(seed.addr()).await.unwrap().unwrap();
    assert!(leech.wait_complete(Duration::from_secs(30)).await);
    assert_eq!(std::fs::read(leech_dir.join("song.ogg")).unwrap(), data);
    let mut checked = Vec::new();
    while let Ok(n) = notices.try_recv() {
        if let Notice::Checked { piece, passed } = n {
            checked.push((piece, passed));
        }
    }
    checked.sort();
    assert_eq!(checked, [(0, true), (1, true), (2, true), (3, true)]);
    let stats = leech.stats().await.unwrap();
    assert_eq!(stats.downloaded, data.len() as u64);
    assert_eq!(seed.stats().await.unwrap().uploaded, data.len() as u64);

    // A peer restarted on the finished folder resumes as a seed.
    drop(leech);
    let again = start(&torrent, &leech_dir, 3).await;
    assert_eq!(again.progress().await.unwrap(), (4, 4));
    let _ = std::fs::remove_dir_all(root("leech"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_serving_corrupt_blocks_is_banned_and_the_download_ends_right() {
    let (data, torrent) = content(8 * PIECE, "disk.img");
    let good_dir = folder("corrupt", "good");
    let bad_dir = folder("corrupt", "bad");
    std::fs::write(good_dir.join("disk.img"), &data).unwrap();
    std::fs::write(bad_dir.join("disk.img"), &data).unwrap();
    let bad = start(&torrent, &bad_dir, 1).await;
    assert_eq!(bad.progress().await.unwrap(), (8, 8));
    // The disk under the bad seed rots after its start-up check: every byte flipped.
    let rotten: Vec<u8> = data.iter().map(|b| !b).collect();
    std::fs::write(bad_dir.join("disk.img"), &rotten).unwrap();

    let leech_dir = folder("corrupt", "leech");
    let leech = start(&torrent, &leech_dir, 2).await;
    let mut notices = leech.notices();
    leech.add_peer(bad.addr()).await.unwrap().unwrap();
    // It sends whole pieces (the only peer): the first failure names it alone.
    let banned = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Ok(Notice::Closed(_, CloseReason::Banned)) = notices.recv().await {
                return;
            }
        }
    })
    .await;
    assert!(banned.is_ok(), "the corrupt seed is banned");
    assert!(leech.stats().await.unwrap().hash_failures >= 1);
    // Banned by IP: the good seed must be elsewhere on loopback.
    let good = TorrentPeer::start(
        torrent.clone(),
        &good_dir,
        "127.0.0.2:0".parse().unwrap(),
        3,
    )
    .await
    .unwrap();
    assert!(leech.add_peer(bad.addr()).await.unwrap().is_err());
    leech.add_peer(good.addr()).await.unwrap().unwrap();
    assert!(leech.wait_complete(Duration::from_secs(30)).await);
    assert_eq!(std::fs::read(leech_dir.join("disk.img")).unwrap(), data);
    let _ = std::fs::remove_dir_all(root("corrupt"));
}

/// BEP 3 multi-file torrents: the files are one byte stream cut into pieces, so pieces
/// span file boundaries; each file lands at `folder/name/path`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bep3_multi_file_pieces_span_files_on_disk() {
    let (data, _) = content(100_000 + 300_000 + 50_000, "unused");
    let parts: [(&[&[u8]], usize); 3] = [
        (&[b"a.txt"], 100_000),
        (&[b"sub", b"b.bin"], 300_000),
        (&[b"c"], 50_000),
    ];
    let specs: Vec<FileSpec<'_>> = parts
        .iter()
        .map(|(path, len)| FileSpec {
            path,
            length: *len as u64,
        })
        .collect();
    let pieces: Vec<u8> = data.chunks(PIECE).flat_map(Sha1::digest).collect();
    let mut out = vec![0; 4096];
    let torrent = write_multi(&mut out, b"album", PIECE as u64, &pieces, &specs, None)
        .unwrap()
        .raw()
        .to_vec();
    let seed_dir = folder("multi", "seed");
    let mut at = 0;
    for (path, len) in parts {
        let file: PathBuf = path.iter().fold(seed_dir.join("album"), |p, c| {
            p.join(std::str::from_utf8(c).unwrap())
        });
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, &data[at..at + len]).unwrap();
        at += len;
    }
    let seed = start(&torrent, &seed_dir, 1).await;
    assert_eq!(seed.progress().await.unwrap(), (2, 2));
    let leech_dir = folder("multi", "leech");
    let leech = start(&torrent, &leech_dir, 2).await;
    leech.add_peer(seed.addr()).await.unwrap().unwrap();
    assert!(leech.wait_complete(Duration::from_secs(30)).await);
    let album = leech_dir.join("album");
    let got = [
        std::fs::read(album.join("a.txt")).unwrap(),
        std::fs::read(album.join("sub").join("b.bin")).unwrap(),
        std::fs::read(album.join("c")).unwrap(),
    ]
    .concat();
    assert_eq!(got, data);
    let _ = std::fs::remove_dir_all(root("multi"));
}
