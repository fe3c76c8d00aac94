//! Fan-out: captures split into k files, scanned in shuffled order two at a
//! time (`xargs -P2`), merged, and washed in shuffled order two at a time,
//! must give every output byte for byte as one sequential wash over the
//! manifest in order; for enumerate, prefix-map and every keyed method.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{bin, corpus, run, run_ok};

/// Split a classic pcap into `k` files of consecutive records.
fn split_pcap(src: &[u8], k: usize, dir: &Path, stem: &str) -> Vec<PathBuf> {
    assert!(src.len() >= 24, "not a pcap");
    let magic = u32::from_le_bytes(src[0..4].try_into().unwrap());
    let le = matches!(magic, 0xa1b2_c3d4 | 0xa1b2_3c4d);
    let rd = |b: &[u8]| {
        let a: [u8; 4] = b.try_into().unwrap();
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let mut recs = Vec::new();
    let mut at = 24;
    while at + 16 <= src.len() {
        let len = rd(&src[at + 8..at + 12]) as usize;
        let end = (at + 16 + len).min(src.len());
        recs.push(&src[at..end]);
        at = end;
    }
    let per = recs.len().div_ceil(k).max(1);
    (0..k)
        .map(|i| {
            let mut out = src[..24].to_vec();
            for r in recs.iter().skip(i * per).take(per) {
                out.extend_from_slice(r);
            }
            let p = dir.join(format!("{stem}-{i}.pcap"));
            std::fs::write(&p, out).unwrap();
            p
        })
        .collect()
}

/// A fixed shuffle of 0..n (Fisher-Yates on a small LCG).
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let mut s = seed;
    for i in (1..n).rev() {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = ((s >> 33) as usize) % (i + 1);
        v.swap(i, j);
    }
    v
}

/// Run `sh -c script` with `lines` on stdin (for xargs); must succeed.
fn xargs(script: &str, lines: &[String]) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("sh");
    {
        use std::io::Write;
        let mut sin = child.stdin.take().unwrap();
        for l in lines {
            writeln!(sin, "{l}").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{script} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Setup {
    dir: tempfile::TempDir,
    inputs: Vec<PathBuf>,
    manifest: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gen = d.join("gen.pcap");
    run_ok(
        &[
            "synth",
            "--packets",
            "6000",
            "--clients",
            "900",
            "--seed",
            "7",
            "-o",
            gen.to_str().unwrap(),
        ],
        b"",
    );
    let mut inputs = split_pcap(&std::fs::read(&gen).unwrap(), 5, d, "gen");
    if let Some(c) = corpus() {
        let pcap = c.join("pcap");
        inputs.extend(split_pcap(
            &std::fs::read(pcap.join("oarc-dnscap__dns.pcap")).unwrap(),
            3,
            d,
            "dns",
        ));
        for f in [
            "oarc-dnscap__dns6.pcap",
            // DNS over TCP, messages split across segments: scan follows
            // the streams as the wash does.
            "oarc-dnscap__dnso1tcp.pcap",
            "zeek__dns-edns-ecs.pcap",
            "oarc-dnscap__frags.pcap",
            "zeek__ipv6-fragmented-dns.pcap",
            "ndpi__dns_fragmented.pcap",
            "tcpdump__edns-opts.pcap",
            "zeek__pcapng-multi-interface.pcapng",
            "derived/nsd-live-subset.pcapng",
        ] {
            inputs.push(pcap.join(f));
        }
        for f in ["testcontent-full.cdns", "matching.cdns.gz"] {
            inputs.push(c.join("cdns/generated").join(f));
        }
    }
    let manifest = d.join("manifest");
    let text: String = inputs
        .iter()
        .map(|p| format!("{}\n", p.display()))
        .collect();
    std::fs::write(&manifest, text).unwrap();
    Setup {
        dir,
        inputs,
        manifest,
    }
}

fn out_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Compare every output of the fan-out with the sequential one.
fn same_outputs(a: &Path, b: &Path, inputs: &[PathBuf], what: &str) {
    for i in inputs {
        let n = out_name(i);
        let x = std::fs::read(a.join(&n)).unwrap_or_else(|e| panic!("{what}: {n}: {e}"));
        let y = std::fs::read(b.join(&n)).unwrap_or_else(|e| panic!("{what}: {n}: {e}"));
        assert!(x == y, "{what}: {n} differs from the sequential wash");
    }
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// One stateful case: sequential wash with --state vs scan/merge/readonly wash.
/// `flags` are the method's (for every step), `scope` the scope and keep
/// flags (for scan and wash).
fn stateful_case(s: &Setup, tag: &str, flags: &[&str], scope: &[&str], mac: &[&str], seed: u64) {
    let d = s.dir.path().join(tag);
    let (seq, fan, parts) = (d.join("seq"), d.join("fan"), d.join("parts"));
    for x in [&seq, &fan, &parts] {
        std::fs::create_dir_all(x).unwrap();
    }
    let seq_state = d.join("seq.state");
    let mut args: Vec<String> = vec!["wash".into(), "-q".into()];
    args.extend(flags.iter().chain(scope).chain(mac).map(|f| f.to_string()));
    args.extend([
        "--state".into(),
        seq_state.display().to_string(),
        "-o".into(),
        seq.display().to_string(),
    ]);
    args.extend(s.inputs.iter().map(|p| p.display().to_string()));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    run_ok(&a, b"");

    let fl = flags
        .iter()
        .chain(scope)
        .chain(mac)
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let b = bin().display().to_string();
    let order: Vec<String> = shuffled(s.inputs.len(), seed)
        .iter()
        .map(|k| k.to_string())
        .collect();
    xargs(
        &format!(
            "xargs -P2 -I{{}} {b} scan -q --manifest {} --index {{}} {fl} -o {}/{{}}.part",
            s.manifest.display(),
            parts.display()
        ),
        &order,
    );
    let merged = d.join("merged.state");
    let mut margs: Vec<String> = vec!["state".into(), "merge".into()];
    margs.extend(flags.iter().map(|f| f.to_string()));
    for k in shuffled(s.inputs.len(), seed + 1) {
        let p = parts.join(format!("{k}.part"));
        assert_eq!(mode(&p), 0o600, "part files are private");
        margs.push(p.display().to_string());
    }
    margs.extend(["-o".into(), merged.display().to_string()]);
    let a: Vec<&str> = margs.iter().map(String::as_str).collect();
    run_ok(&a, b"");
    assert_eq!(mode(&merged), 0o600, "state files are private");
    assert_eq!(mode(&seq_state), 0o600, "state files are private");
    assert!(
        std::fs::read(&merged).unwrap() == std::fs::read(&seq_state).unwrap(),
        "{tag}: merged state differs from the sequential one"
    );
    let text = String::from_utf8(std::fs::read(&merged).unwrap()).unwrap();
    let mac_rows = text.lines().filter(|l| l.starts_with("mac,mac,")).count();
    if flags.contains(&"enumerate") && !mac.contains(&"keep") {
        assert!(mac_rows > 1, "{tag}: the MAC numbering is in the state");
    } else {
        assert_eq!(mac_rows, 0, "{tag}: no MAC numbering in the state");
    }

    let state_before = std::fs::read(&merged).unwrap();
    let files: Vec<String> = shuffled(s.inputs.len(), seed + 2)
        .iter()
        .map(|&k| s.inputs[k].display().to_string())
        .collect();
    xargs(
        &format!(
            "xargs -P2 -I{{}} sh -c '{b} wash -q {fl} --state {} --state-readonly \"$1\" -o {}/$(basename \"$1\")' _ {{}}",
            merged.display(),
            fan.display()
        ),
        &files,
    );
    assert_eq!(
        std::fs::read(&merged).unwrap(),
        state_before,
        "read-only state changed"
    );
    same_outputs(&seq, &fan, &s.inputs, tag);
}

#[test]
fn stateful_fan_out_matches_sequential_wash() {
    let s = setup();
    let key = common::key_file(s.dir.path(), "pm.key", &"5a".repeat(32));
    let k = key.display().to_string();
    // MACs numbered by enumerate (the default --mac wash) go through the
    // scan, the merge and the read-only table too.
    stateful_case(&s, "enum", &["--method", "enumerate"], &[], &[], 11);
    stateful_case(
        &s,
        "enum-mac-keep",
        &["--method", "enumerate"],
        &[],
        &["--mac", "keep"],
        16,
    );
    stateful_case(
        &s,
        "enum-dnswasher",
        &["--method", "enumerate", "--numbering", "dnswasher"],
        &[],
        &[],
        12,
    );
    stateful_case(
        &s,
        "enum-clients",
        &["--method", "enumerate"],
        &["--scope", "clients", "--keep", "10.0.0.0/8"],
        &[],
        13,
    );
    let pm = ["--method", "prefix-map", "--key-file", &k];
    stateful_case(&s, "pm", &pm, &[], &[], 14);
    let pmc = [
        "--method",
        "prefix-map",
        "--key-file",
        &k,
        "--preserve-class",
    ];
    stateful_case(&s, "pm-class", &pmc, &["--scope", "clients"], &[], 15);
}

#[test]
fn keyed_methods_fan_out_as_they_are() {
    let s = setup();
    let d = s.dir.path();
    let k32 = common::key_file(d, "k32", &format!("{}{}", "3c".repeat(16), "d1".repeat(16)));
    let k16 = common::key_file(d, "k16", &"a7".repeat(16));
    let b = bin().display().to_string();
    for (m, key) in [
        ("cryptopan", Some(&k32)),
        ("tsa", Some(&k32)),
        ("ipcrypt-pfx", Some(&k32)),
        ("ipcipher", Some(&k16)),
        ("truncate", None),
    ] {
        let (seq, fan) = (d.join(format!("{m}-seq")), d.join(format!("{m}-fan")));
        std::fs::create_dir_all(&seq).unwrap();
        std::fs::create_dir_all(&fan).unwrap();
        let mut fl = vec!["--method".to_string(), m.to_string()];
        if let Some(k) = key {
            fl.extend(["--key-file".into(), k.display().to_string()]);
        }
        let mut args: Vec<String> = vec!["wash".into(), "-q".into()];
        args.extend(fl.iter().cloned());
        args.extend(["-o".into(), seq.display().to_string()]);
        args.extend(s.inputs.iter().map(|p| p.display().to_string()));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run_ok(&a, b"");
        let files: Vec<String> = shuffled(s.inputs.len(), 21)
            .iter()
            .map(|&k| s.inputs[k].display().to_string())
            .collect();
        xargs(
            &format!(
                "xargs -P2 -I{{}} sh -c '{b} wash -q {} \"$1\" -o {}/$(basename \"$1\")' _ {{}}",
                fl.join(" "),
                fan.display()
            ),
            &files,
        );
        same_outputs(&seq, &fan, &s.inputs, m);
    }
}

#[test]
fn missing_address_fails_and_leaves_everything_untouched() {
    let s = setup();
    let d = s.dir.path();
    // A manifest of the first two files only.
    let man = d.join("short");
    std::fs::write(
        &man,
        format!("{}\n{}\n", s.inputs[0].display(), s.inputs[1].display()),
    )
    .unwrap();
    for k in 0..2 {
        run_ok(
            &[
                "scan",
                "-q",
                "--manifest",
                man.to_str().unwrap(),
                "--index",
                &k.to_string(),
                "--method",
                "enumerate",
                "-o",
                d.join(format!("s{k}.part")).to_str().unwrap(),
            ],
            b"",
        );
    }
    let st = d.join("short.state");
    let (p0, p1) = (d.join("s0.part"), d.join("s1.part"));
    // Every part is needed.
    let o = run(
        &[
            "state",
            "merge",
            "--method",
            "enumerate",
            p1.to_str().unwrap(),
            "-o",
            st.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(2), "a missing part is a usage error");
    assert!(String::from_utf8_lossy(&o.stderr).contains("no part for manifest line(s) 0"));
    assert!(!st.exists());
    // The method must be the scanned one.
    let o = run(
        &[
            "state",
            "merge",
            "--method",
            "prefix-map",
            "--key-file",
            common::key_file(d, "k", &"11".repeat(32)).to_str().unwrap(),
            p0.to_str().unwrap(),
            p1.to_str().unwrap(),
            "-o",
            st.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(2));
    run_ok(
        &[
            "state",
            "merge",
            "--method",
            "enumerate",
            p1.to_str().unwrap(),
            p0.to_str().unwrap(),
            "-o",
            st.to_str().unwrap(),
        ],
        b"",
    );
    let before = std::fs::read(&st).unwrap();
    // A file the table was not built from (a later part of the generated
    // capture: new clients).
    let out = d.join("x.pcap");
    std::fs::write(&out, b"old contents").unwrap();
    let o = run(
        &[
            "wash",
            "-q",
            "--method",
            "enumerate",
            "--state",
            st.to_str().unwrap(),
            "--state-readonly",
            "--mac",
            "keep",
            s.inputs[4].to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("not in the state table"));
    assert_eq!(std::fs::read(&out).unwrap(), b"old contents");
    assert_eq!(std::fs::read(&st).unwrap(), before, "table unchanged");
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.contains(".tmp") || n.contains(".ipwash-")
        })
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    // Files it was built from wash fine.
    let ok = d.join("ok.pcap");
    run_ok(
        &[
            "wash",
            "-q",
            "--method",
            "enumerate",
            "--state",
            st.to_str().unwrap(),
            "--state-readonly",
            "--mac",
            "keep",
            s.inputs[1].to_str().unwrap(),
            "-o",
            ok.to_str().unwrap(),
        ],
        b"",
    );
    assert!(ok.exists());
    // A missing state file is a usage error, not an empty table.
    let o = run(
        &[
            "wash",
            "-q",
            "--method",
            "enumerate",
            "--state",
            d.join("nope.state").to_str().unwrap(),
            "--state-readonly",
            "--mac",
            "keep",
            s.inputs[1].to_str().unwrap(),
            "-o",
            d.join("y.pcap").to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(2));
    // scan refuses a stateless method and an index past the manifest.
    for args in [
        vec!["--method", "truncate", "--index", "0"],
        vec!["--method", "enumerate", "--index", "2"],
    ] {
        let mut a = vec!["scan", "--manifest", man.to_str().unwrap(), "-o"];
        let p = d.join("z.part");
        a.push(p.to_str().unwrap());
        a.extend(args);
        assert_eq!(run(&a, b"").status.code(), Some(2));
        assert!(!p.exists());
    }
}

/// A series of runs with one `--state` numbers every MAC (and address)
/// once: file by file, the outputs equal those of one run over them all.
#[test]
fn state_carries_the_mac_numbering_from_run_to_run() {
    let s = setup();
    let d = s.dir.path();
    let (one, series) = (d.join("one"), d.join("series"));
    std::fs::create_dir_all(&one).unwrap();
    std::fs::create_dir_all(&series).unwrap();
    let inputs: Vec<&PathBuf> = s.inputs.iter().take(4).collect();
    let st1 = d.join("one.state");
    let mut a: Vec<String> = ["wash", "-q", "--method", "enumerate", "--state"]
        .iter()
        .map(|x| x.to_string())
        .collect();
    a.push(st1.display().to_string());
    a.push("-o".into());
    a.push(one.display().to_string());
    a.extend(inputs.iter().map(|p| p.display().to_string()));
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    run_ok(&a, b"");
    let st2 = d.join("series.state");
    for p in &inputs {
        let out = series.join(out_name(p));
        run_ok(
            &[
                "wash",
                "-q",
                "--method",
                "enumerate",
                "--state",
                st2.to_str().unwrap(),
                p.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ],
            b"",
        );
    }
    let owned: Vec<PathBuf> = inputs.iter().map(|p| (*p).clone()).collect();
    same_outputs(&one, &series, &owned, "series");
    assert_eq!(
        std::fs::read(&st1).unwrap(),
        std::fs::read(&st2).unwrap(),
        "one state for one run and for the series"
    );
    let text = String::from_utf8(std::fs::read(&st2).unwrap()).unwrap();
    let macs = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with("mac,mac,"))
            .map(str::to_string)
            .collect()
    };
    assert!(macs(&text).len() > 1);
    // A run that leaves MACs alone keeps the numbering in the state.
    let out = d.join("keep.pcap");
    run_ok(
        &[
            "wash",
            "-q",
            "--method",
            "enumerate",
            "--mac",
            "keep",
            "--state",
            st2.to_str().unwrap(),
            inputs[0].to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        b"",
    );
    let after = String::from_utf8(std::fs::read(&st2).unwrap()).unwrap();
    assert_eq!(
        macs(&after),
        macs(&text),
        "--mac keep carries the numbering"
    );
}
