//! The manual around the command line, checked on the real binary: the
//! examples at the end of every `--help`, shell completions, man pages and
//! `--version`.

mod common;

use std::process::{Command, Stdio};

use common::{have_tool, root, run, run_ok};

fn text(b: Vec<u8>) -> String {
    String::from_utf8(b).expect("utf-8")
}

/// Subcommand names listed under `Commands:` in a help text (without `help`).
fn listed_commands(help: &str) -> Vec<String> {
    let Some(start) = help.find("Commands:\n") else {
        return Vec::new();
    };
    help[start + 10..]
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_string)
        .collect()
}

/// Every command path: ["wash"], ["bloom"], ["bloom", "build"], ...
fn all_paths() -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut todo: Vec<Vec<String>> = listed_commands(&text(run_ok(&["--help"], b"")))
        .into_iter()
        .map(|c| vec![c])
        .collect();
    while let Some(p) = todo.pop() {
        let mut args: Vec<&str> = p.iter().map(String::as_str).collect();
        args.push("--help");
        for sub in listed_commands(&text(run_ok(&args, b""))) {
            let mut q = p.clone();
            q.push(sub);
            todo.push(q);
        }
        out.push(p);
    }
    out.sort();
    out
}

fn help_of(path: &[String]) -> String {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    text(run_ok(&args, b""))
}

#[test]
fn top_level_help_lists_subcommands_and_points_to_wash() {
    let help = text(run_ok(&["--help"], b""));
    let cmds = listed_commands(&help);
    for c in ["wash", "map", "keygen", "bloom", "completions", "man"] {
        assert!(cmds.iter().any(|x| x == c), "{c} not listed:\n{help}");
    }
    // One line each: every line of the list is `  NAME  description`.
    let start = help.find("Commands:\n").unwrap() + 10;
    for l in help[start..].lines().take_while(|l| l.starts_with("  ")) {
        assert!(l.split_whitespace().count() >= 2, "no description: {l:?}");
    }
    assert!(help.contains("ipwash help wash"), "{help}");
    // `ipwash help wash` is the wash page, examples included.
    let hw = text(run_ok(&["help", "wash"], b""));
    assert!(hw.contains("--method") && hw.contains("Examples:"), "{hw}");
}

#[test]
fn every_subcommand_help_ends_with_real_examples() {
    let paths = all_paths();
    assert!(paths.len() >= 12, "{paths:?}");
    for p in &paths {
        let help = help_of(p);
        let i = help
            .rfind("Examples:\n")
            .unwrap_or_else(|| panic!("ipwash {p:?} --help has no examples:\n{help}"));
        let examples = &help[i + 10..];
        // Command lines (comments start with `#`).
        let cmds: Vec<&str> = examples
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert!(
            (2..=4).contains(&cmds.len()),
            "ipwash {p:?}: {} examples:\n{examples}",
            cmds.len()
        );
        // Nothing but examples after the heading.
        assert!(examples
            .lines()
            .all(|l| l.is_empty() || l.starts_with("  ")));
        // Every example runs ipwash (perhaps in a pipeline), and every long
        // flag it uses is an option of the subcommand it runs.
        for c in &cmds {
            let seg = c
                .split('|')
                .map(str::trim)
                .find(|s| s.starts_with("ipwash "))
                .unwrap_or_else(|| panic!("{p:?}: example without ipwash: {c}"));
            let words: Vec<String> = seg.split_whitespace().skip(1).map(str::to_string).collect();
            let used = paths
                .iter()
                .filter(|q| words.starts_with(q))
                .max_by_key(|q| q.len())
                .unwrap_or_else(|| panic!("{p:?}: example runs no subcommand: {c}"));
            let uhelp = help_of(used);
            let opts = &uhelp[..uhelp.rfind("Examples:").unwrap_or(uhelp.len())];
            for flag in words.iter().filter(|w| w.starts_with("--")) {
                let flag = flag.split('=').next().unwrap();
                assert!(
                    opts.contains(&format!("{flag} ")) || opts.contains(&format!("{flag}\n")),
                    "ipwash {used:?}: example flag {flag} is not an option:\n{c}"
                );
            }
        }
    }
}

#[test]
fn version_names_the_commit() {
    let v = text(run_ok(&["--version"], b""));
    let v = v.trim();
    let rest = v
        .strip_prefix(concat!("ipwash ", env!("CARGO_PKG_VERSION"), " (commit "))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("version line: {v:?}"));
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        Some(h) if std::env::var_os("IPWASH_GIT_COMMIT").is_none() => assert_eq!(rest, h),
        Some(_) => {}
        None => assert_eq!(rest, "unknown"),
    }
}

#[test]
fn man_pages_render_with_man() {
    if !have_tool("man") || !have_tool("groff") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut paths = vec![vec![]];
    paths.extend(all_paths());
    for p in &paths {
        let mut args = vec!["man"];
        args.extend(p.iter().map(String::as_str));
        let page = run_ok(&args, b"");
        let name = if p.is_empty() {
            "ipwash".to_string()
        } else {
            format!("ipwash-{}", p.join("-"))
        };
        let file = dir.path().join(format!("{name}.1"));
        std::fs::write(&file, &page).unwrap();
        let out = Command::new("man")
            .arg("--warnings")
            .arg("-l")
            .arg(&file)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .env("MAN_KEEP_FORMATTING", "0")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "man -l {name}: {:?}", out.status);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.trim().is_empty(), "man -l {name} warned:\n{err}");
        // Rendered text without overstrike (bold/underline) sequences.
        let raw = String::from_utf8_lossy(&out.stdout);
        let mut shown = String::new();
        for c in raw.chars() {
            if c == '\u{8}' {
                shown.pop();
            } else {
                shown.push(c);
            }
        }
        assert!(
            shown.contains("NAME") && shown.contains(&name),
            "{name}:\n{shown}"
        );
        assert!(shown.contains("EXAMPLES"), "{name}: no examples:\n{shown}");
        if p == &["wash".to_string()] {
            assert!(
                shown.contains("--method") && shown.contains("--key-file"),
                "{shown}"
            );
            // Examples keep their lines (no filling).
            assert!(
                shown.contains("\n       ipwash wash testdata/sample-dns.pcap -o washed.pcap"),
                "{shown}"
            );
        }
        if p.is_empty() {
            assert!(shown.contains("ipwash-wash(1)"), "{shown}");
        }
    }
    // Every page at once.
    let all = dir.path().join("all");
    let o = run(&["man", "--dir", all.to_str().unwrap()], b"");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let n = std::fs::read_dir(&all).unwrap().count();
    assert_eq!(n, paths.len());
    assert!(all.join("ipwash-bloom-query.1").is_file());
    // An unknown page is a usage error naming the known ones.
    let o = run(&["man", "nosuch"], b"");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("known: wash"));
}

#[test]
fn bash_completion_loads_and_completes() {
    if !have_tool("bash") {
        return;
    }
    let script = run_ok(&["completions", "bash"], b"");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ipwash.bash");
    std::fs::write(&f, &script).unwrap();
    let check = format!(
        "set -e; source '{}'; complete -p ipwash; \
         COMP_WORDS=(ipwash bl); COMP_CWORD=1; _ipwash ipwash bl ipwash; echo \"top: ${{COMPREPLY[*]}}\"; \
         COMP_WORDS=(ipwash wash --dro); COMP_CWORD=2; _ipwash ipwash --dro wash; echo \"wash: ${{COMPREPLY[*]}}\"; \
         COMP_WORDS=(ipwash completions ''); COMP_CWORD=2; _ipwash ipwash '' completions; echo \"shells: ${{COMPREPLY[*]}}\"",
        f.display()
    );
    let out = Command::new("bash").arg("-c").arg(&check).output().unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{so}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(so.contains("complete -o bashdefault"), "{so}");
    assert!(so.contains("top: bloom"), "{so}");
    assert!(so.contains("wash: --dropped"), "{so}");
    assert!(so.contains("bash zsh fish elvish powershell"), "{so}");
}

#[test]
fn completions_for_every_shell() {
    for (shell, marker) in [
        ("bash", "_ipwash()"),
        ("zsh", "#compdef ipwash"),
        ("fish", "complete -c ipwash"),
        ("elvish", "edit:completion:arg-completer[ipwash]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let s = text(run_ok(&["completions", shell], b""));
        assert!(s.contains(marker), "{shell}: no {marker}");
        assert!(s.contains("wash") && s.contains("key-file"), "{shell}");
    }
    // zsh is optional: checked when present.
    let zsh = Command::new("sh").args(["-c", "command -v zsh"]).output();
    if zsh.map(|o| o.status.success()).unwrap_or(false) {
        let out = Command::new("zsh")
            .arg("-n")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin
                    .take()
                    .unwrap()
                    .write_all(&run_ok(&["completions", "zsh"], b""))?;
                c.wait()
            })
            .unwrap();
        assert!(out.success(), "zsh -n rejects the zsh completion");
    }
    let o = run(&["completions", "tcsh"], b"");
    assert_eq!(o.status.code(), Some(2));
}
