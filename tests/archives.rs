//! Archives: folders of compressed captures washed in bulk. Every codec in
//! and out (read back by the real tools and tshark), directory walks
//! mirrored under `-o DIR`, the refusals that keep a batch from losing a
//! file (the file system is checked afterwards), `--in-place`, `--state`
//! modes, `--stats-json`, SIGTERM mid-run, and the Bloom folder rules.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{bin, have_tool, key_file, root, run, run_ok};

const K32: &str = "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202";

fn sample() -> PathBuf {
    root().join("testdata/sample-dns.pcap")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every file under `dir` with its bytes (and mode), to compare before
/// and after a refused run.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    fn go(d: &Path, out: &mut BTreeMap<PathBuf, (Vec<u8>, u32)>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                out.insert(p.clone(), (Vec::new(), 0));
                go(&p, out);
            } else {
                use std::os::unix::fs::PermissionsExt;
                out.insert(
                    p.clone(),
                    (std::fs::read(&p).unwrap(), m.permissions().mode()),
                );
            }
        }
    }
    let mut m = BTreeMap::new();
    go(dir, &mut m);
    m
}

/// A synthetic capture of `packets` packets.
fn synth(path: &Path, packets: u32, seed: u32) {
    run_ok(
        &[
            "synth",
            "--packets",
            &packets.to_string(),
            "--seed",
            &seed.to_string(),
            "-o",
            s(path),
        ],
        b"",
    );
}

/// `data` compressed by `tool` (gzip, xz, zstd, bzip2) as two members,
/// streams or frames (split in the middle), concatenated.
fn compress_two_parts(tool: &str, data: &[u8]) -> Vec<u8> {
    let half = data.len() / 2;
    let mut out = Vec::new();
    for part in [&data[..half], &data[half..]] {
        out.extend(tool_filter(tool, &["-c"], part));
    }
    out
}

/// Run `tool args` with `input` on stdin; its stdout.
fn tool_filter(tool: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut c = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut i = c.stdin.take().unwrap();
    let data = input.to_vec();
    let t = std::thread::spawn(move || i.write_all(&data));
    let o = c.wait_with_output().unwrap();
    t.join().unwrap().unwrap();
    assert!(o.status.success(), "{tool} {args:?}");
    o.stdout
}

fn tool_for(ext: &str) -> &'static str {
    match ext {
        "gz" => "gzip",
        "xz" => "xz",
        "zst" => "zstd",
        "bz2" => "bzip2",
        _ => unreachable!(),
    }
}

const EXTS: [&str; 4] = ["gz", "xz", "zst", "bz2"];

fn tools_present() -> bool {
    EXTS.iter().all(|e| have_tool(tool_for(e)))
}

/// Packets tshark reads from a plain capture.
fn tshark_count(path: &Path) -> Option<usize> {
    if !have_tool("tshark") {
        return None;
    }
    let o = Command::new("tshark")
        .args(["-r", s(path), "-T", "fields", "-e", "frame.number"])
        .output()
        .unwrap();
    assert!(o.status.success(), "tshark reads {}", path.display());
    Some(String::from_utf8_lossy(&o.stdout).lines().count())
}

fn wash(args: &[&str], key: &Path) -> std::process::Output {
    let mut a: Vec<&str> = vec!["wash"];
    a.extend(args);
    a.extend(["--method", "cryptopan", "--key-file", s(key), "-q"]);
    run(&a, b"")
}

fn wash_ok(args: &[&str], key: &Path) {
    let o = wash(args, key);
    assert!(
        o.status.success(),
        "wash {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn folder_of_every_codec_mirrored_and_read_back_by_the_tools() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let k = key_file(dir.path(), "k", K32);
    let plain = dir.path().join("plain.pcap");
    synth(&plain, 30_000, 3);
    let data = std::fs::read(&plain).unwrap();
    // The reference: the plain file washed to plain.
    let reference = dir.path().join("ref.pcap");
    wash_ok(&[s(&plain), "-o", s(&reference)], &k);
    let reference = std::fs::read(&reference).unwrap();
    // A tree: concatenated members/streams/frames of every codec.
    let tree = dir.path().join("archive");
    std::fs::create_dir_all(tree.join("2026/01")).unwrap();
    std::fs::create_dir_all(tree.join("2026/02")).unwrap();
    std::fs::write(tree.join("2026/01/a.pcap"), &data).unwrap();
    for (i, ext) in EXTS.iter().enumerate() {
        let sub = if i % 2 == 0 { "2026/01" } else { "2026/02" };
        let z = compress_two_parts(tool_for(ext), &data);
        std::fs::write(tree.join(sub).join(format!("c{i}.pcap.{ext}")), z).unwrap();
    }
    // A hidden file (such as a temporary file) is not an input.
    std::fs::write(tree.join("2026/.partial.pcap.ipwash-1-1.tmp"), b"junk").unwrap();
    let out = dir.path().join("washed");
    let stats = dir.path().join("stats.json");
    for threads in ["1", "2", "3"] {
        let _ = std::fs::remove_dir_all(&out);
        wash_ok(
            &[
                s(&tree),
                "-o",
                s(&out),
                "--threads",
                threads,
                "--stats-json",
                s(&stats),
            ],
            &k,
        );
        assert_eq!(
            std::fs::read(out.join("2026/01/a.pcap")).unwrap(),
            reference
        );
        for (i, ext) in EXTS.iter().enumerate() {
            let sub = if i % 2 == 0 { "2026/01" } else { "2026/02" };
            let o = out.join(sub).join(format!("c{i}.pcap.{ext}"));
            let z = std::fs::read(&o).unwrap();
            // Read back by the real tool: byte-identical to the plain wash
            // for every codec and thread count.
            let back = tool_filter(tool_for(ext), &["-dc"], &z);
            assert!(back == reference, "{ext} threads {threads}");
            if *ext == "gz" {
                // tshark reads gzip itself.
                if let Some(n) = tshark_count(&o) {
                    assert_eq!(n, 30_000);
                }
            }
        }
        // Nothing else in the output tree (the hidden file was skipped).
        let n = snapshot(&out).keys().filter(|p| p.is_file()).count();
        assert_eq!(n, 5, "threads {threads}");
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    let files = v["files"].as_array().unwrap();
    let inputs: Vec<&str> = files.iter().map(|f| f["input"].as_str().unwrap()).collect();
    let mut sorted = inputs.clone();
    sorted.sort();
    assert_eq!(inputs, sorted, "walked in sorted order");
    assert_eq!(files.len(), 5);
    for f in files {
        assert_eq!(f["packets_read"], 30_000);
        assert_eq!(f["packets_written"], 30_000);
        assert!(f["error"].is_null());
        assert!(f["seconds"].as_f64().unwrap() >= 0.0);
        assert!(f["output"].as_str().unwrap().starts_with(s(&out)));
    }
    assert_eq!(v["packets_read"], 150_000);
    // The plain reference output is a capture tshark reads in full.
    let p = out.join("2026/01/a.pcap");
    if let Some(n) = tshark_count(&p) {
        assert_eq!(n, 30_000);
    }
}

#[test]
fn output_name_compress_and_level_decide_the_wrapping() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let k = key_file(dir.path(), "k", K32);
    let ref_path = dir.path().join("ref.pcap");
    wash_ok(&[s(&sample()), "-o", s(&ref_path)], &k);
    let reference = std::fs::read(&ref_path).unwrap();
    let ref_count = tshark_count(&ref_path);
    let data = std::fs::read(sample()).unwrap();
    for ext in EXTS {
        // Plain in, compressed out by the output's name.
        let o = dir.path().join(format!("o.pcap.{ext}"));
        wash_ok(&[s(&sample()), "-o", s(&o)], &k);
        let back = tool_filter(tool_for(ext), &["-dc"], &std::fs::read(&o).unwrap());
        assert!(back == reference, "{ext}");
        // Compressed in (by the tool), plain out by the name.
        let z = dir.path().join(format!("in.pcap.{ext}"));
        std::fs::write(&z, tool_filter(tool_for(ext), &["-c"], &data)).unwrap();
        let p = dir.path().join(format!("p-{ext}.pcap"));
        wash_ok(&[s(&z), "-o", s(&p)], &k);
        assert!(std::fs::read(&p).unwrap() == reference, "{ext}");
        assert_eq!(tshark_count(&p), ref_count);
        // Stdout is plain unless --compress says otherwise.
        let o = run_ok(
            &[
                "wash",
                s(&z),
                "--method",
                "cryptopan",
                "--key-file",
                s(&k),
                "-q",
            ],
            b"",
        );
        assert!(o == reference, "{ext} to stdout");
    }
    // --compress on stdout, with --level.
    let zs = run_ok(
        &[
            "wash",
            s(&sample()),
            "--compress",
            "zstd",
            "--level",
            "19",
            "--method",
            "cryptopan",
            "--key-file",
            s(&k),
            "-q",
        ],
        b"",
    );
    assert!(tool_filter("zstd", &["-dc"], &zs) == reference);
    // A level outside the codec's range is a usage error.
    let o = dir.path().join("bad.pcap.gz");
    let r = wash(&[s(&sample()), "-o", s(&o), "--level", "10"], &k);
    assert_eq!(r.status.code(), Some(2));
    assert!(!o.exists());
}

#[test]
fn refusals_write_nothing_and_leave_every_file_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let k = key_file(root, "k", K32);
    std::fs::create_dir_all(root.join("x")).unwrap();
    std::fs::create_dir_all(root.join("y")).unwrap();
    std::fs::create_dir_all(root.join("out")).unwrap();
    std::fs::copy(sample(), root.join("x/a.pcap")).unwrap();
    std::fs::copy(sample(), root.join("y/a.pcap")).unwrap();
    std::fs::write(root.join("out/a.pcap"), b"an older washed file").unwrap();
    std::fs::write(root.join("existing.pcap"), b"precious").unwrap();
    std::fs::write(root.join("notacapture.bin"), b"hello, not a capture").unwrap();
    std::fs::hard_link(root.join("x/a.pcap"), root.join("hard.pcap")).unwrap();
    let (x, y, out) = (
        root.join("x/a.pcap"),
        root.join("y/a.pcap"),
        root.join("out"),
    );
    let existing = root.join("existing.pcap");
    let before = snapshot(root);
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        // Two inputs with one base name into one folder.
        (
            vec![s(&x).into(), s(&y).into(), "-o".into(), s(&out).into()],
            2,
            "both be written",
        ),
        // Two folders whose trees hold the same relative name.
        (
            vec![
                s(&root.join("x")).into(),
                s(&root.join("y")).into(),
                "-o".into(),
                s(&out).into(),
            ],
            2,
            "both be written",
        ),
        // The output is the input, by name, by another spelling, by hard link.
        (
            vec![s(&x).into(), "-o".into(), s(&x).into()],
            2,
            "is the input",
        ),
        (
            vec![
                s(&x).into(),
                "-o".into(),
                format!("{}/x/../x/a.pcap", s(root)),
            ],
            2,
            "is the input",
        ),
        (
            vec![s(&x).into(), "-o".into(), s(&root.join("hard.pcap")).into()],
            2,
            "is the input",
        ),
        // --state and --stats-json that cannot be written.
        (
            vec![
                s(&x).into(),
                "-o".into(),
                s(&existing).into(),
                "--stats-json".into(),
                s(&root.join("nodir/stats.json")).into(),
            ],
            2,
            "--stats-json",
        ),
        (
            vec![
                s(&x).into(),
                "-o".into(),
                s(&existing).into(),
                "--stats-json".into(),
                s(&out).into(),
            ],
            2,
            "is a directory",
        ),
        // Flags of another method, a cache beyond the maximum, a bad level.
        (
            vec![
                s(&x).into(),
                "-o".into(),
                s(&existing).into(),
                "--ipv4-prefix".into(),
                "8".into(),
            ],
            2,
            "--ipv4-prefix is an option of --method truncate",
        ),
        (
            vec![
                s(&x).into(),
                "-o".into(),
                s(&existing).into(),
                "--tsa-pool".into(),
                "512".into(),
            ],
            2,
            "--tsa-pool",
        ),
        (
            vec![
                s(&x).into(),
                "-o".into(),
                s(&existing).into(),
                "--cache-size".into(),
                "4194305".into(),
            ],
            2,
            "maximum",
        ),
        (
            vec![
                s(&x).into(),
                "-o".into(),
                s(&existing).into(),
                "--level".into(),
                "5".into(),
            ],
            2,
            "--level",
        ),
        // An unknown format: a data error, and the existing output is kept.
        (
            vec![
                s(&root.join("notacapture.bin")).into(),
                "-o".into(),
                s(&existing).into(),
            ],
            1,
            "unknown format",
        ),
        // Several inputs into a file.
        (
            vec![s(&x).into(), s(&y).into(), "-o".into(), s(&existing).into()],
            2,
            "directory",
        ),
    ];
    for (args, code, msg) in &cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = wash(&a, &k);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(*code), "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: {err}");
        assert_eq!(snapshot(root), before, "{args:?} changed the file system");
    }
    // --state that cannot be written (stateful method); a usage error
    // found late (a missing key file) also leaves the existing output.
    for extra in [
        vec![
            "--method",
            "enumerate",
            "--state",
            "/nonexistent-dir/st.csv",
        ],
        vec!["--method", "cryptopan", "--key-file", "/nonexistent-key"],
    ] {
        let mut a = vec!["wash", s(&x), "-o", s(&existing), "-q"];
        a.extend(extra.iter().copied());
        let o = run(&a, b"");
        assert_eq!(o.status.code(), Some(2), "{a:?}");
        assert_eq!(snapshot(root), before, "{a:?} changed the file system");
    }
}

/// A classic pcap (little-endian, µs) with `linktype` and one record.
fn pcap_with_linktype(linktype: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&linktype.to_le_bytes());
    let pkt = [0x45u8; 40];
    v.extend_from_slice(&1u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
    v.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
    v.extend_from_slice(&pkt);
    v
}

#[test]
fn unsupported_link_type_is_a_data_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let k = key_file(dir.path(), "k", K32);
    let inp = dir.path().join("usb.pcap");
    std::fs::write(&inp, pcap_with_linktype(189)).unwrap();
    let out = dir.path().join("o.pcap");
    std::fs::write(&out, b"keep me").unwrap();
    let o = wash(&[s(&inp), "-o", s(&out)], &k);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("link type 189"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    // The same file to a new name: nothing appears.
    let fresh = dir.path().join("new.pcap");
    assert_eq!(wash(&[s(&inp), "-o", s(&fresh)], &k).status.code(), Some(1));
    assert!(!fresh.exists());
    // A real one from the corpus: NFLOG (239).
    if let Some(c) = common::corpus() {
        let o = wash(
            &[s(&c.join("pcap/tcpdump__nflog.pcap")), "-o", s(&fresh)],
            &k,
        );
        assert_eq!(o.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&o.stderr).contains("link type 239"));
        assert!(!fresh.exists());
    }
}

#[test]
fn in_place_replaces_each_input_only_when_its_copy_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let k = key_file(dir.path(), "k", K32);
    let reference = dir.path().join("ref.pcap");
    wash_ok(&[s(&sample()), "-o", s(&reference)], &k);
    let tree = dir.path().join("t");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::copy(sample(), tree.join("a.pcap")).unwrap();
    // A cut file: a data error mid-file. In place, the original stays.
    let data = std::fs::read(sample()).unwrap();
    let cut = &data[..data.len() - 7];
    std::fs::write(tree.join("b.pcap"), cut).unwrap();
    let o = wash(&[s(&tree), "--in-place"], &k);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        std::fs::read(tree.join("a.pcap")).unwrap(),
        std::fs::read(&reference).unwrap()
    );
    assert_eq!(std::fs::read(tree.join("b.pcap")).unwrap(), cut);
    assert_eq!(
        std::fs::read_dir(&tree).unwrap().count(),
        2,
        "no temporary file left"
    );
}

#[test]
fn state_is_private_kept_stricter_and_saved_after_a_data_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("st.csv");
    let bad = dir.path().join("bad.pcap");
    let data = std::fs::read(sample()).unwrap();
    std::fs::write(&bad, &data[..data.len() - 7]).unwrap();
    let out = dir.path().join("out");
    let o = run(
        &[
            "wash",
            s(&sample()),
            s(&bad),
            "-o",
            s(&out),
            "--method",
            "enumerate",
            "--state",
            s(&st),
            "-q",
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(1), "the cut file is a data error");
    let mode = std::fs::metadata(&st).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a new state file is 0600");
    assert!(std::fs::read_to_string(&st).unwrap().contains("pair"));
    // A stricter mode is kept.
    std::fs::set_permissions(&st, std::fs::Permissions::from_mode(0o400)).unwrap();
    run_ok(
        &[
            "wash",
            s(&sample()),
            "-o",
            s(&dir.path().join("o2.pcap")),
            "--method",
            "enumerate",
            "--state",
            s(&st),
            "-q",
        ],
        b"",
    );
    let mode = std::fs::metadata(&st).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o400);
    // A looser mode is tightened to 0600.
    std::fs::set_permissions(&st, std::fs::Permissions::from_mode(0o644)).unwrap();
    run_ok(
        &[
            "wash",
            s(&sample()),
            "-o",
            s(&dir.path().join("o3.pcap")),
            "--method",
            "enumerate",
            "--state",
            s(&st),
            "-q",
        ],
        b"",
    );
    let mode = std::fs::metadata(&st).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A run that writes no output leaves the state file alone.
    let before = std::fs::read(&st).unwrap();
    let o = run(
        &[
            "wash",
            s(&dir.path().join("k-missing.pcap")),
            "-o",
            s(&dir.path().join("o4.pcap")),
            "--method",
            "enumerate",
            "--state",
            s(&st),
            "-q",
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read(&st).unwrap(), before);
}

#[test]
fn sigterm_mid_run_leaves_no_partial_file_and_saves_the_state() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("live.pcap");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let first = dir.path().join("first.pcap");
    std::fs::copy(sample(), &first).unwrap();
    let out = dir.path().join("out");
    let st = dir.path().join("st.csv");
    let mut child = Command::new(bin())
        .args([
            "wash",
            s(&first),
            s(&fifo),
            "-o",
            s(&out),
            "--method",
            "enumerate",
            "--state",
            s(&st),
            "-q",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Opening the FIFO for writing blocks until ipwash opens it to read,
    // which it does only after the first file is complete.
    let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let data = std::fs::read(sample()).unwrap();
    // Half the capture, then the writer stays open and silent: the run is
    // certainly mid-way through the second input.
    w.write_all(&data[..data.len() / 2]).unwrap();
    w.flush().unwrap();
    assert!(
        out.join("first.pcap").exists(),
        "the first output is complete"
    );
    let pid = child.id().to_string();
    let k = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(k.success());
    let status = child.wait().unwrap();
    drop(w);
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(143), "{err}");
    assert!(err.contains("SIGTERM"), "{err}");
    // The first output whole, nothing of the second (no temporary file).
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["first.pcap"], "{err}");
    let direct = dir.path().join("direct.pcap");
    run_ok(
        &[
            "wash",
            s(&first),
            "-o",
            s(&direct),
            "--method",
            "enumerate",
            "-q",
        ],
        b"",
    );
    assert!(std::fs::read(&direct).unwrap() == std::fs::read(out.join("first.pcap")).unwrap());
    // The state covers the file written: washing it again with the state
    // gives the same bytes.
    let st_text = std::fs::read_to_string(&st).unwrap();
    assert!(st_text.contains("pair"), "{st_text}");
    let again = dir.path().join("again.pcap");
    run_ok(
        &[
            "wash",
            s(&first),
            "-o",
            s(&again),
            "--method",
            "enumerate",
            "--state",
            s(&st),
            "-q",
        ],
        b"",
    );
    assert!(std::fs::read(&again).unwrap() == std::fs::read(out.join("first.pcap")).unwrap());
}

/// The sample's records split after `n` packets into two captures.
fn split_sample(n: usize, a: &Path, b: &Path) {
    let data = std::fs::read(sample()).unwrap();
    assert_eq!(&data[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    let (head, mut rest) = data.split_at(24);
    let mut recs = Vec::new();
    while rest.len() >= 16 {
        let len = u32::from_le_bytes(rest[8..12].try_into().unwrap()) as usize;
        let (r, tail) = rest.split_at(16 + len);
        recs.push(r.to_vec());
        rest = tail;
    }
    let mut one = head.to_vec();
    let mut two = head.to_vec();
    for (i, r) in recs.iter().enumerate() {
        if i < n {
            one.extend(r);
        } else {
            two.extend(r);
        }
    }
    std::fs::write(a, one).unwrap();
    std::fs::write(b, two).unwrap();
}

fn bloom_build(
    inp: &Path,
    out: &Path,
    key: &Path,
    period: &str,
    items: &str,
) -> std::process::Output {
    run(
        &[
            "bloom",
            "build",
            s(inp),
            "-o",
            s(out),
            "--key-file",
            s(key),
            "--period",
            period,
            "--min-clients",
            "1",
            "--expected-items",
            items,
        ],
        b"",
    )
}

fn bloom_present(filters: &[&Path], key: &Path, name: &str) -> bool {
    let mut a = vec![
        "bloom",
        "query",
        "--key-file",
        s(key),
        "--json",
        "--name",
        name,
    ];
    a.extend(filters.iter().map(|p| s(p)));
    let out = run_ok(&a, b"");
    let text = String::from_utf8(out).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .any(|v| v["result"] == "present")
}

#[test]
fn bloom_build_into_a_folder_merges_or_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "k", K32);
    let (a, b) = (dir.path().join("a.pcap"), dir.path().join("b.pcap"));
    split_sample(10, &a, &b);
    let f = dir.path().join("filters");
    assert!(bloom_build(&a, &f, &key, "3600", "1000").status.success());
    let files: Vec<PathBuf> = std::fs::read_dir(&f)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "one hour");
    assert!(bloom_present(&[&files[0]], &key, "www.example.com"));
    assert!(!bloom_present(&[&files[0]], &key, "zero.example.com"));
    // A second run into the same folder: merged into the hour's filter, so
    // the first run's names are still present.
    assert!(bloom_build(&b, &f, &key, "3600", "1000").status.success());
    assert_eq!(std::fs::read_dir(&f).unwrap().count(), 1);
    assert!(bloom_present(&[&files[0]], &key, "www.example.com"));
    assert!(bloom_present(&[&files[0]], &key, "zero.example.com"));
    // Other parameters, or another key: refused, the folder unchanged.
    let before = snapshot(&f);
    let o = bloom_build(&b, &f, &key, "3600", "5000");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--expected-items"));
    let other = key_file(dir.path(), "k2", &K32.replace('1', "2"));
    let o = bloom_build(&b, &f, &other, "3600", "1000");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("key"));
    assert_eq!(snapshot(&f), before);
}

#[test]
fn bloom_merge_needs_one_contiguous_span_each_filter_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "k", K32);
    let f = dir.path().join("filters");
    assert!(bloom_build(&sample(), &f, &key, "5", "1000")
        .status
        .success());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&f)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    // Queries at 0-4 s, 5-9 s and 15-19 s: no filter for the silent 10-14 s.
    assert_eq!(files.len(), 3, "three 5-second periods with queries");
    let merged = dir.path().join("m.bloom");
    let merge = |inputs: &[&Path], extra: &[&str]| {
        let mut a = vec!["bloom", "merge", "-o", s(&merged)];
        a.extend(extra);
        a.extend(inputs.iter().map(|p| s(p)));
        run(&a, b"")
    };
    // A gap (periods 1 and 3): refused, unless --allow-gaps.
    let o = merge(&[&files[0], &files[2]], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--allow-gaps"));
    assert!(!merged.exists());
    assert!(merge(&[&files[0], &files[2]], &["--allow-gaps"])
        .status
        .success());
    std::fs::remove_file(&merged).unwrap();
    // The same filter twice, or a copy of it (overlap): refused.
    let o = merge(&[&files[0], &files[1], &files[0]], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("twice"));
    let copy = dir.path().join("copy.bloom");
    std::fs::copy(&files[1], &copy).unwrap();
    let o = merge(&[&files[0], &files[1], &copy], &["--allow-gaps"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("overlap"));
    assert!(!merged.exists());
    // A contiguous span, in any order: one filter of 10 seconds.
    assert!(merge(&[&files[1], &files[0]], &[]).status.success());
    let info = run_ok(&["bloom", "info", "--json", s(&merged)], b"");
    let v: serde_json::Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(v["period_length"], 10);
    // Everything, with the gap allowed: every query counted once.
    let all: Vec<&Path> = files.iter().rev().map(PathBuf::as_path).collect();
    assert!(merge(&all, &["--allow-gaps"]).status.success());
    let info = run_ok(&["bloom", "info", "--json", s(&merged)], b"");
    let v: serde_json::Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(v["queries"], 7, "every query once");
    assert_eq!(v["period_length"], 20);
}

/// Where the block array of a C-DNS file starts and where its first block
/// ends (the file array, type id and preamble decoded with ciborium).
fn cdns_first_block(f: &[u8]) -> (usize, usize) {
    use ciborium::value::Value;
    let mut c = std::io::Cursor::new(f);
    c.set_position(1);
    let _: Value = ciborium::de::from_reader(&mut c).unwrap();
    let _: Value = ciborium::de::from_reader(&mut c).unwrap();
    let start = c.position() as usize;
    // The block array head: one byte for the indefinite form and for the
    // short definite form.
    c.set_position(start as u64 + 1);
    let _: Value = ciborium::de::from_reader(&mut c).unwrap();
    (start, c.position() as usize)
}

#[test]
fn cdns_failing_before_its_first_block_keeps_the_existing_output() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let mut f = Vec::new();
    let xz = std::fs::read(corpus.join("cdns/generated/nsd-live.cdns.xz")).unwrap();
    std::io::Read::read_to_end(&mut liblzma::read::XzDecoder::new(&xz[..]), &mut f).unwrap();
    let (start, first_end) = cdns_first_block(&f);
    assert!(first_end < f.len() / 2, "the sample holds several blocks");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let k = key_file(root, "k", K32);
    let out = root.join("out.cdns");
    // Cut in the preamble, at the block array and inside the first block:
    // the run fails before any block is written, and the older file stays.
    for cut in [
        8,
        start - 1,
        start + 1,
        (start + first_end) / 2,
        first_end - 1,
    ] {
        std::fs::write(&out, b"an older washed file").unwrap();
        let inp = root.join("cut.cdns");
        std::fs::write(&inp, &f[..cut]).unwrap();
        let o = wash(&[s(&inp), "-o", s(&out)], &k);
        assert_eq!(o.status.code(), Some(1), "cut {cut}");
        assert_eq!(
            std::fs::read(&out).unwrap(),
            b"an older washed file",
            "cut {cut} replaced the existing output"
        );
    }
    // Cut after the first block: the blocks before the fault are written,
    // closed, and replace the older file as a valid C-DNS file.
    let inp = root.join("cut.cdns");
    std::fs::write(&inp, &f[..first_end + 1]).unwrap();
    let o = wash(&[s(&inp), "-o", s(&out)], &k);
    assert_eq!(o.status.code(), Some(1));
    let washed = std::fs::read(&out).unwrap();
    assert_ne!(washed, b"an older washed file");
    let (_, end) = cdns_first_block(&washed);
    assert_eq!(washed[end..], [0xff], "one block, then the array closes");
    let again = root.join("again.cdns");
    let o = wash(&[s(&out), "-o", s(&again)], &k);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
