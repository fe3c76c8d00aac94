//! The manual around the command line: the examples that end each
//! subcommand's `--help`, shell completions (`ipwash completions SHELL`) and
//! man pages (`ipwash man [SUBCOMMAND]`), all generated from the clap
//! definition so that every subcommand and flag appears in them.

use std::io::Write;
use std::path::PathBuf;

use clap::CommandFactory;

use crate::error::CliError;

/// The version line: the package version and the git commit it was built
/// from (`unknown` outside a git checkout).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("IPWASH_GIT_COMMIT"),
    ")"
);

/// After the top-level subcommand list.
pub const TOP: &str = "\
Start with `ipwash help wash` (the main command: options and examples).

Examples:
  # Make a key, then wash a capture with Crypto-PAn
  ipwash keygen --method cryptopan -o site.key
  ipwash wash in.pcap -o out.pcap --method cryptopan --key-file site.key

  # Shell completions and the man page
  ipwash completions bash > ~/.local/share/bash-completion/completions/ipwash
  ipwash man > ~/.local/share/man/man1/ipwash.1";

/// `ipwash wash --help`.
pub const WASH: &str = "\
Examples:
  # Wash the bundled sample with Crypto-PAn (statistics on stderr)
  ipwash wash testdata/sample-dns.pcap -o washed.pcap --method cryptopan --key-file testdata/sample.key

  # A folder of captures (pcap, pcapng, C-DNS, dnstap; .gz .xz .zst .bz2), tree mirrored, one mapping
  ipwash wash captures/ -o washed/ --method cryptopan --key-file site.key --stats-json washed.json

  # A live capture: keep the server side and your own network, truncate clients to /24
  tcpdump -i eth0 -w - port 53 | ipwash wash - -o - --method truncate --scope clients --keep 192.0.2.0/24 | tcpdump -nr -

  # Enumerate across days, and look at what was dropped (the file is sensitive: 0600)
  ipwash wash monday.pcap -o monday-washed.pcap --method enumerate --state clients.csv --dropped monday-dropped.pcapng";

/// `ipwash map --help`.
pub const MAP: &str = "\
Examples:
  # One address per line in, one out
  printf '24.5.0.80\\n2001:db8::1\\n' | ipwash map --method cryptopan --key-file site.key

  # Undo it with the same key
  ipwash map --method cryptopan --key-file site.key --reverse < washed.txt

  # Number addresses, consistently across runs
  cut -d' ' -f1 access.log | ipwash map --method enumerate --state clients.csv";

/// `ipwash keygen --help`.
pub const KEYGEN: &str = "\
Examples:
  # A 32-byte Crypto-PAn key in a new file (mode 0600; an existing file is never overwritten)
  ipwash keygen --method cryptopan -o site.key

  # A 16-byte ipcipher key, and a key for Bloom filters
  ipwash keygen --method ipcipher -o ipcipher.key
  ipwash keygen --method bloom -o bloom.key";

/// `ipwash bench --help`.
pub const BENCH: &str = "\
Examples:
  # Every technique, a table
  ipwash bench

  # Two techniques, 200,000 addresses each, as JSON
  ipwash bench --method cryptopan --method ipcrypt-pfx --count 200000 --json";

/// `ipwash synth --help`.
pub const SYNTH: &str = "\
Examples:
  # A million packets from 50,000 Zipf-distributed clients
  ipwash synth -o big.pcap

  # Every query from a new random client (worst case for caches)
  ipwash synth -o random.pcap --packets 100000 --random-clients";

/// `ipwash bloom --help`.
pub const BLOOM: &str = "\
Examples:
  ipwash keygen --method bloom -o bloom.key
  ipwash bloom build day.pcap -o filters --key-file bloom.key --period 3600
  ipwash bloom query --key-file bloom.key filters/*.bloom --name evil.example
  ipwash bloom info filters/*.bloom";

/// `ipwash bloom build --help`.
pub const BLOOM_BUILD: &str = "\
Inputs: pcap, pcapng, C-DNS (RFC 8618) and dnstap files, plain, gzip, xz, zstd or bzip2, or stdin (`-`).

Examples:
  # One filter per hour from a day's capture
  ipwash bloom build day.pcap.gz -o filters --key-file bloom.key

  # C-DNS input, answers per customer network withheld below 10 clients
  ipwash bloom build day.cdns.xz -o filters --key-file bloom.key --entities customers.tsv --min-clients 10";

/// `ipwash bloom query --help`.
pub const BLOOM_QUERY: &str = "\
Parent domains match: `example.com` is present when `www.a.example.com` was
asked (the whole name, its last two labels and each label are recorded);
an intermediate parent such as `a.example.com` only from its own queries.

Examples:
  ipwash bloom query --key-file bloom.key filters/*.bloom --name www.example.com --name nothere.example
  ipwash bloom query --key-file bloom.key day.bloom --names-file iocs.txt --json
  ipwash bloom query --key-file bloom.key day.bloom --name evil.example --entity customer-a --entity customer-b";

/// `ipwash bloom merge --help`.
pub const BLOOM_MERGE: &str = "\
Examples:
  # A day's hourly filters into one, then ask it
  ipwash bloom merge -o day.bloom filters/*.bloom
  ipwash bloom query --key-file bloom.key day.bloom --name evil.example";

/// `ipwash bloom info --help`.
pub const BLOOM_INFO: &str = "\
Examples:
  ipwash bloom info day.bloom
  ipwash bloom info --json filters/*.bloom";

/// `ipwash text --help`.
pub const TEXT: &str = "\
Examples:
  # A BIND query log: every address (and reverse name) washed, every other byte kept
  ipwash text /var/log/named/query.log -o query-washed.log --method cryptopan --key-file site.key

  # Only two columns of a Zeek dns.log
  ipwash text --format zeek --field id.orig_h --field id.resp_h dns.log -o dns-washed.log --method truncate

  # Follow a live log; lines whose field cannot be read are dropped and counted
  tail -F query.log | ipwash text --format json --field client --on-error skip --method cryptopan --key-file site.key";

/// `ipwash audit --help`.
pub const AUDIT: &str = "\
Examples:
  # Check a washed capture before sharing it (exit 1 when an original survives)
  ipwash audit day.pcap day-washed.pcap

  # Search for a given list of addresses, as JSON
  ipwash audit --json --addresses clients.txt day-washed.pcap";

/// `ipwash scan --help`.
pub const SCAN: &str = "\
Examples:
  # File 3 of a manifest, on any machine (enumerate: where each address is first seen)
  ipwash scan --manifest day.list --index 3 -o parts/3.part --method enumerate

  # prefix-map needs its key on every machine
  ipwash scan --manifest day.list --index 0 -o parts/0.part --method prefix-map --key-file site.key";

/// `ipwash state --help`.
pub const STATE: &str = "\
Examples:
  ipwash state merge --method enumerate parts/*.part -o day.state
  ipwash state merge --method prefix-map --key-file site.key parts/*.part -o day.state";

/// `ipwash state merge --help`.
pub const STATE_MERGE: &str = "\
Examples:
  # The table a sequential run over the manifest would build, then wash anywhere with it
  ipwash state merge --method enumerate parts/*.part -o day.state
  ipwash wash dns-03.pcap -o washed/dns-03.pcap --method enumerate --state day.state --state-readonly";

/// `ipwash completions --help`.
pub const COMPLETIONS: &str = "\
Examples:
  ipwash completions bash > ~/.local/share/bash-completion/completions/ipwash
  ipwash completions zsh > ~/.zfunc/_ipwash      # with fpath+=(~/.zfunc) in ~/.zshrc
  ipwash completions fish > ~/.config/fish/completions/ipwash.fish";

/// `ipwash man --help`.
pub const MAN: &str = "\
Examples:
  ipwash man | man -l -
  ipwash man wash > ~/.local/share/man/man1/ipwash-wash.1
  ipwash man --dir ~/.local/share/man/man1      # every page at once";

/// The shells `ipwash completions` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    /// GNU Bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
    /// Elvish.
    Elvish,
    /// PowerShell.
    Powershell,
}

/// `ipwash completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to write a completion script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// `ipwash man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// The subcommand's page (e.g. `wash`, or `bloom build`); none: the main page.
    #[arg(value_name = "SUBCOMMAND")]
    pub subcommand: Vec<String>,
    /// Write every page (ipwash.1, ipwash-wash.1, ...) into DIR instead.
    #[arg(long, value_name = "DIR", conflicts_with = "subcommand")]
    pub dir: Option<PathBuf>,
}

fn command() -> clap::Command {
    let mut cmd = crate::cli::Cli::command();
    cmd.build();
    cmd
}

/// Run `ipwash completions`.
pub fn run_completions(a: &CompletionsArgs) -> Result<(), CliError> {
    use clap_complete::Shell as S;
    let shell = match a.shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Elvish => S::Elvish,
        Shell::Powershell => S::PowerShell,
    };
    let mut cmd = command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "ipwash", &mut buf);
    let mut o = std::io::stdout().lock();
    o.write_all(&buf)?;
    o.flush()?;
    Ok(())
}

/// Run `ipwash man`.
pub fn run_man(a: &ManArgs) -> Result<(), CliError> {
    let top = command();
    if let Some(dir) = &a.dir {
        return write_all_pages(&top, dir);
    }
    let mut cmd = &top;
    for word in &a.subcommand {
        cmd = cmd.find_subcommand(word).ok_or_else(|| {
            let known: Vec<&str> = cmd
                .get_subcommands()
                .filter(|c| !c.is_hide_set() && c.get_name() != "help")
                .map(|c| c.get_name())
                .collect();
            CliError::usage(format!(
                "man: no subcommand {word:?} (known: {})",
                known.join(", ")
            ))
        })?;
    }
    let page = render(cmd)?;
    let mut o = std::io::stdout().lock();
    o.write_all(&page)?;
    o.flush()?;
    Ok(())
}

fn write_all_pages(top: &clap::Command, dir: &std::path::Path) -> Result<(), CliError> {
    fn walk(cmd: &clap::Command, dir: &std::path::Path, n: &mut usize) -> Result<(), CliError> {
        let name = cmd.get_display_name().unwrap_or(cmd.get_name());
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, render(cmd)?)
            .map_err(|e| CliError::usage(format!("cannot write {}: {e}", path.display())))?;
        *n += 1;
        for sub in cmd
            .get_subcommands()
            .filter(|c| !c.is_hide_set() && c.get_name() != "help")
        {
            walk(sub, dir, n)?;
        }
        Ok(())
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::usage(format!("cannot create {}: {e}", dir.display())))?;
    let mut n = 0;
    walk(top, dir, &mut n)?;
    eprintln!("ipwash: {n} man pages written to {}", dir.display());
    Ok(())
}

/// One man page in roff: clap_mangen's sections, then the examples from
/// the help (kept line by line, not filled), then the version.
fn render(cmd: &clap::Command) -> Result<Vec<u8>, CliError> {
    let man = clap_mangen::Man::new(cmd.clone())
        .source(concat!("ipwash ", env!("CARGO_PKG_VERSION")))
        .manual("ipwash manual");
    let mut w = Vec::new();
    man.render_title(&mut w)?;
    man.render_name_section(&mut w)?;
    man.render_synopsis_section(&mut w)?;
    man.render_description_section(&mut w)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut w)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut w)?;
    }
    if let Some(text) = cmd.get_after_long_help().or_else(|| cmd.get_after_help()) {
        w.extend_from_slice(examples_roff(&text.to_string()).as_bytes());
    }
    if cmd.get_version().is_some() {
        man.render_version_section(&mut w)?;
    }
    Ok(w)
}

/// The after-help text as roff: prose before `Examples:` becomes NOTES
/// (filled), the examples an EXAMPLES section printed as written.
fn examples_roff(text: &str) -> String {
    let (notes, examples) = match text.find("Examples:") {
        Some(i) => (&text[..i], &text[i + "Examples:".len()..]),
        None => (text, ""),
    };
    let mut out = String::new();
    let notes = notes.trim();
    if !notes.is_empty() {
        out.push_str(".SH NOTES\n");
        for para in notes.split("\n\n") {
            out.push_str(".PP\n");
            for line in para.lines() {
                out.push_str(&roff_line(line.trim()));
                out.push('\n');
            }
        }
    }
    let examples = examples.trim_matches('\n');
    if !examples.is_empty() {
        out.push_str(".SH EXAMPLES\n.nf\n");
        for line in examples.lines() {
            out.push_str(&roff_line(line.strip_prefix("  ").unwrap_or(line)));
            out.push('\n');
        }
        out.push_str(".fi\n");
    }
    out
}

/// Escape one line of text for roff: backslashes, hyphens (so that they
/// are copied as ASCII minus signs) and a leading control character.
fn roff_line(line: &str) -> String {
    let mut s = String::with_capacity(line.len() + 8);
    if line.starts_with('.') || line.starts_with('\'') {
        s.push_str("\\&");
    }
    for c in line.chars() {
        match c {
            '\\' => s.push_str("\\e"),
            '-' => s.push_str("\\-"),
            _ => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roff_escapes() {
        assert_eq!(roff_line(".x -a \\n"), "\\&.x \\-a \\en");
        let r = examples_roff("Note one.\n\nExamples:\n  a -b\n\n  c\n");
        assert!(r.contains(".SH NOTES\n.PP\nNote one.\n"));
        assert!(r.contains(".SH EXAMPLES\n.nf\na \\-b\n\nc\n.fi\n"));
    }
}
