//! `keyward encrypt` / `keyward decrypt`: client-side envelope encryption through a live
//! server. Files of every shape round-trip, a 256 MiB file in constant memory, and every kind
//! of damage is refused with a clear error and no output file.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use keyward_e2e::{Db, Server, keyward_bin};
use sha2::{Digest, Sha256};

const FRAME: usize = 64 * 1024;

struct Cli<'a> {
    server: &'a Server,
    token: String,
    key: String,
}

impl Cli<'_> {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(keyward_bin());
        cmd.args(args).env("KEYWARD_SERVER", &self.server.base).env("KEYWARD_TOKEN", &self.token);
        cmd
    }

    fn encrypt(&self, input: &Path, output: &Path) -> Output {
        let (i, o) = (input.to_str().unwrap(), output.to_str().unwrap());
        self.command(&["encrypt", "--key", &self.key, "--context", "app=billing", "--context", "tenant=7", i, o])
            .output()
            .unwrap()
    }

    fn decrypt(&self, input: &Path, output: &Path) -> Output {
        self.command(&["decrypt", input.to_str().unwrap(), output.to_str().unwrap()]).output().unwrap()
    }
}

fn ok(out: &Output) {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Where frame `i` starts in an envelope whose header is `h` bytes.
fn frame_at(h: usize, i: usize) -> usize {
    h + i * (5 + FRAME + 16)
}

async fn setup(s: &Server) -> Cli<'_> {
    let key = s.create_key("billing").await;
    Cli { server: s, token: s.token("alice", &["billing"]), key }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_every_shape_round_trip_and_damage_is_refused() {
    let s = Server::start(Db::Sqlite).await;
    let cli = setup(&s).await;
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);

    for len in [0usize, 1, FRAME, FRAME + 1, 3 * FRAME] {
        let plaintext: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
        std::fs::write(path("in"), &plaintext).unwrap();
        ok(&cli.encrypt(&path("in"), &path("sealed")));
        let sealed = std::fs::read(path("sealed")).unwrap();
        if len >= 64 {
            assert!(!sealed.windows(64).any(|w| w == &plaintext[..64]), "plaintext visible in the envelope");
        }
        ok(&cli.decrypt(&path("sealed"), &path("out")));
        assert_eq!(std::fs::read(path("out")).unwrap(), plaintext, "{len} bytes");
        std::fs::remove_file(path("out")).unwrap();
    }

    // Standard input and output.
    let mut child = cli
        .command(&["encrypt", "--key", &cli.key, "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"piped through").unwrap();
    let sealed = child.wait_with_output().unwrap();
    ok(&sealed);
    let mut child = cli.command(&["decrypt", "-", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(&sealed.stdout).unwrap();
    let opened = child.wait_with_output().unwrap();
    ok(&opened);
    assert_eq!(opened.stdout, b"piped through");

    // Damage: a file of three full frames (the third marked final), and a second file under
    // the same key and context to take frames from.
    let plaintext = vec![0x5Au8; 3 * FRAME];
    std::fs::write(path("in"), &plaintext).unwrap();
    ok(&cli.encrypt(&path("in"), &path("a")));
    ok(&cli.encrypt(&path("in"), &path("b")));
    let a = std::fs::read(path("a")).unwrap();
    let b = std::fs::read(path("b")).unwrap();
    let h = a.len() - 3 * (5 + FRAME + 16);
    let frame = |bytes: &[u8], i: usize| bytes[frame_at(h, i)..frame_at(h, i + 1)].to_vec();
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    cases.push(("truncated between frames", a[..frame_at(h, 2)].to_vec(), "truncated"));
    cases.push(("truncated mid-frame", a[..frame_at(h, 1) + 100].to_vec(), "truncated"));
    cases.push(("frames removed", a[..h].to_vec(), "truncated"));
    let mut reordered = a.clone();
    reordered[frame_at(h, 0)..frame_at(h, 1)].copy_from_slice(&frame(&a, 1));
    reordered[frame_at(h, 1)..frame_at(h, 2)].copy_from_slice(&frame(&a, 0));
    cases.push(("frames reordered", reordered, "frame 0 failed authentication"));
    let mut swapped = a.clone();
    swapped[frame_at(h, 1)..frame_at(h, 2)].copy_from_slice(&frame(&b, 1));
    cases.push(("frame from another file", swapped, "frame 1 failed authentication"));
    let mut flipped = a.clone();
    flipped[frame_at(h, 2) + 5 + 1000] ^= 0x01;
    cases.push(("a bit flipped in frame 2", flipped, "frame 2 failed authentication"));
    let mut header = a.clone();
    let ctx = a.windows(6).position(|w| w == b"tenant").unwrap();
    header[ctx + 9] ^= 0x01; // `tenant":"7` becomes `tenant":"6`: another context
    cases.push(("the context in the header changed", header, "InvalidCiphertext"));
    let mut trailing = a.clone();
    trailing.extend_from_slice(b"more");
    cases.push(("bytes after the final frame", trailing, "after the final frame"));
    for (what, bytes, says) in cases {
        std::fs::write(path("bad"), &bytes).unwrap();
        let out = cli.decrypt(&path("bad"), &path("plain"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: decrypted");
        assert!(stderr.contains(says), "{what}: {stderr}");
        assert!(!path("plain").exists(), "{what}: partial plaintext written");
    }
    // No temporary file is left behind either.
    let left: Vec<PathBuf> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(left.len(), 5, "{left:?}");

    // Someone without the key cannot get the data key.
    let bob = Cli { server: &s, token: s.token("bob", &["payments"]), key: cli.key.clone() };
    let out = bob.decrypt(&path("a"), &path("plain"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403 AccessDenied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!path("plain").exists());
}

/// Peak resident memory of a child, polled from /proc until it exits.
fn run_measuring_peak_rss(mut cmd: Command) -> (Output, u64) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_path)
            && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kib: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
            peak_kib = peak_kib.max(kib);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    (child.wait_with_output().unwrap(), peak_kib * 1024)
}

fn sha256_of(path: &Path) -> Vec<u8> {
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finalize().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_256_mib_file_round_trips_in_constant_memory() {
    let s = Server::start(Db::Sqlite).await;
    let cli = setup(&s).await;
    let dir = tempfile::tempdir().unwrap();
    let (input, sealed, output) = (dir.path().join("in"), dir.path().join("sealed"), dir.path().join("out"));
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        let mut block = [0u8; 4096];
        for i in 0..(256usize << 20) / block.len() {
            block[..8].copy_from_slice(&(i as u64).to_be_bytes());
            f.write_all(&block).unwrap();
        }
    }
    const LIMIT: u64 = 64 << 20;
    let (i, s_, o) = (input.to_str().unwrap(), sealed.to_str().unwrap(), output.to_str().unwrap());
    let (out, peak) = run_measuring_peak_rss(cli.command(&["encrypt", "--key", &cli.key, i, s_]));
    ok(&out);
    eprintln!("encrypt 256 MiB: peak RSS {} MiB", peak >> 20);
    assert!(peak > 0 && peak < LIMIT, "encrypt peak RSS {peak} bytes");
    let (out, peak) = run_measuring_peak_rss(cli.command(&["decrypt", s_, o]));
    ok(&out);
    eprintln!("decrypt 256 MiB: peak RSS {} MiB", peak >> 20);
    assert!(peak > 0 && peak < LIMIT, "decrypt peak RSS {peak} bytes");
    assert_eq!(std::fs::metadata(&output).unwrap().len(), 256 << 20);
    assert_eq!(sha256_of(&input), sha256_of(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_library_seals_and_opens_through_the_api() {
    use keyward_client::api::{ApiError, Client};
    use keyward_client::envelope;
    let s = Server::start(Db::Sqlite).await;
    let cli = setup(&s).await;
    let client = Client::new(&s.base, &cli.token, None).unwrap();
    let context = std::collections::BTreeMap::from([("app".to_owned(), "billing".to_owned())]);
    let dk = client.generate_data_key(&cli.key, &context).await.unwrap();
    assert_eq!((dk.key_id.as_str(), dk.key_version, dk.plaintext.len()), (cli.key.as_str(), 1, 32));
    let mut sealed = Vec::new();
    envelope::seal(&dk.plaintext, &dk.ciphertext_blob, &context, 1024, &b"library data"[..], &mut sealed).unwrap();
    let mut input = sealed.as_slice();
    let header = envelope::read_header(&mut input).unwrap();
    assert_eq!(header.context, context);
    let data_key = client.decrypt(&header.data_key_blob, &header.context).await.unwrap();
    let mut opened = Vec::new();
    envelope::open(&header, &data_key, input, &mut opened).unwrap();
    assert_eq!(opened, b"library data");
    // Errors carry the problem's stable code.
    let other = std::collections::BTreeMap::from([("app".to_owned(), "other".to_owned())]);
    match client.decrypt(&header.data_key_blob, &other).await {
        Err(ApiError::Problem { status: 400, code, .. }) => assert_eq!(code, "InvalidCiphertext"),
        other => panic!("a wrong context decrypted: {other:?}"),
    }
}
