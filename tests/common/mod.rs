//! Helpers shared by the integration tests: run the real binary, find the
//! corpus, check for external tools.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The ipwash binary built for this test run.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ipwash"))
}

/// Run ipwash with arguments and stdin bytes.
pub fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ipwash");
    let mut sin = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = sin.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait ipwash");
    let _ = feeder.join();
    out
}

/// Run and insist on success; returns stdout.
pub fn run_ok(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let o = run(args, stdin);
    assert!(
        o.status.success(),
        "ipwash {:?} failed ({:?}):\n{}",
        args,
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The corpus folder from IPWASH_CORPUS, or None (tests then skip).
pub fn corpus() -> Option<PathBuf> {
    match std::env::var_os("IPWASH_CORPUS") {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(
                p.is_dir(),
                "IPWASH_CORPUS={} is not a directory",
                p.display()
            );
            Some(p)
        }
        None => {
            eprintln!("note: IPWASH_CORPUS unset; skipping corpus part of this test");
            None
        }
    }
}

/// True when an external tool is on PATH. When IPWASH_REQUIRE_TOOLS is set
/// (CI), a missing tool is a failure rather than a skip.
pub fn have_tool(name: &str) -> bool {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var_os("IPWASH_REQUIRE_TOOLS").is_none(),
            "{name} is required (IPWASH_REQUIRE_TOOLS is set) but not installed"
        );
        eprintln!("note: {name} not installed; skipping the part of this test that needs it");
    }
    ok
}

/// Write a key file into `dir`.
pub fn key_file(dir: &Path, name: &str, hex: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{hex}\n")).expect("write key");
    p
}

/// Read a vector CSV from testdata/vectors: the `# source:` line is skipped;
/// returns the header and the rows.
pub fn vectors(rel: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let path = root().join("testdata/vectors").join(rel);
    let mut rd = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .from_path(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = rd
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    let rows = rd
        .records()
        .map(|r| r.expect("row").iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

/// Column index by name.
pub fn col(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}
