//! The formats: which parts of a line are washed, and when a line is
//! unreadable.
//!
//! - plain: the whole line goes through the scanner;
//! - `--regex RE`: only capture group 1 of each match (a line the regex
//!   does not match is unreadable);
//! - csv (RFC 4180 quoting) and tsv (no quoting): fields split on the
//!   delimiter, the raw bytes of each selected field scanned, so quoting and
//!   delimiters stay as they were; a line with fewer fields than the header
//!   or broken quoting is unreadable (a quoted field spanning lines is
//!   unreadable too);
//! - json lines: each string value (never a key) whose dotted path is
//!   selected; a line that is not JSON is unreadable;
//! - zeek: columns named by `#fields`; `#` lines copied; a line with the
//!   wrong number of columns is unreadable.
//!
//! Without `--field` every field (or string value) is scanned and any
//! address found in it is washed. A field named with `--field` (and in zeek
//! a column typed `addr` or `subnet`, selected or by default) must hold an
//! address or be empty / unset (`-`, `(empty)`): anything else is an
//! unreadable value, handled by `--on-error` (`mark` replaces the value).

use std::net::IpAddr;
use std::ops::Range;

use crate::pipeline::AddrCache;
use crate::stats::DistinctCounter;
use crate::wash::{mask_ip, Side, Technique, Washer};

use super::scanner::{self, Found, Kind};
use super::{Format, OnError, MARKER};

/// How a field is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sel {
    /// Copied unchanged.
    No,
    /// Every address found in it is washed.
    Loose,
    /// Must hold an address (or be empty/unset); every address is washed.
    Strict,
}

/// Everything decided about the format before the data lines: shared by
/// every worker.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The format.
    pub format: Format,
    /// `--regex`.
    pub regex: Option<regex::bytes::Regex>,
    /// `--on-error`.
    pub on_error: OnError,
    /// Field delimiter (csv `,`, tsv and zeek tab).
    pub delim: u8,
    /// Per column (csv/tsv/zeek), once the header is known; columns past
    /// the end get `rest`.
    pub cols: Vec<Sel>,
    /// Treatment of columns past `cols`.
    pub rest: Sel,
    /// Number of columns a data line must have (csv/tsv with a header, zeek).
    pub width: Option<usize>,
    /// json: selected dotted paths (empty: every string value).
    pub paths: Vec<String>,
    /// `--field` as given.
    pub fields: Vec<String>,
    /// zeek: the `#fields` line seen.
    pub zeek_fields: Option<Vec<u8>>,
}

impl Spec {
    /// A spec for `format`; csv/tsv/zeek columns are resolved later by
    /// [`Spec::header`] (or [`Spec::no_header`]).
    pub fn new(
        format: Format,
        fields: Vec<String>,
        regex: Option<regex::bytes::Regex>,
        on_error: OnError,
    ) -> Self {
        let delim = if format == Format::Csv { b',' } else { b'\t' };
        let rest = if fields.is_empty() {
            Sel::Loose
        } else {
            Sel::No
        };
        Spec {
            format,
            regex,
            on_error,
            delim,
            cols: Vec::new(),
            rest,
            width: None,
            paths: if format == Format::Json {
                fields.clone()
            } else {
                Vec::new()
            },
            fields,
            zeek_fields: None,
        }
    }

    /// True when the first line is a header the columns are resolved from.
    pub fn wants_header(&self) -> bool {
        matches!(self.format, Format::Csv | Format::Tsv)
    }

    /// csv/tsv without a header: `--field` must be 1-based indexes.
    pub fn no_header(&mut self) -> Result<(), String> {
        let names: Vec<String> = Vec::new();
        self.resolve(&names)
    }

    /// csv/tsv: resolve `--field` against the header line.
    pub fn header(&mut self, line: &[u8]) -> Result<(), String> {
        let line = strip_cr(line);
        let mut rd = csv::ReaderBuilder::new()
            .has_headers(false)
            .delimiter(self.delim)
            .quoting(self.format == Format::Csv)
            .from_reader(line);
        let names: Vec<String> = match rd.records().next() {
            Some(Ok(r)) => r.iter().map(str::to_string).collect(),
            Some(Err(e)) => return Err(format!("header line: {e}")),
            None => Vec::new(),
        };
        self.width = Some(names.len().max(1));
        self.resolve(&names)
    }

    fn resolve(&mut self, names: &[String]) -> Result<(), String> {
        if self.fields.is_empty() {
            return Ok(());
        }
        let mut cols = vec![Sel::No; names.len()];
        for f in &self.fields {
            let i = match names.iter().position(|n| n == f) {
                Some(i) => i,
                None => match f.parse::<usize>() {
                    Ok(n) if n >= 1 => n - 1,
                    _ => return Err(format!("--field {f:?}: no such column in the header")),
                },
            };
            if cols.len() <= i {
                cols.resize(i + 1, Sel::No);
            }
            cols[i] = Sel::Strict;
        }
        self.cols = cols;
        Ok(())
    }

    /// zeek: a `#fields` / `#types` header line (other `#` lines are copied
    /// as they are). Errors name what is wrong.
    pub fn zeek_header(&mut self, line: &[u8]) -> Result<(), String> {
        let line = strip_cr(line);
        if let Some(rest) = line.strip_prefix(b"#separator ") {
            if rest != b"\\x09" {
                return Err(format!(
                    "zeek separator {:?}: only tab-separated logs are read",
                    String::from_utf8_lossy(rest)
                ));
            }
        } else if let Some(rest) = line.strip_prefix(b"#fields\t") {
            if let Some(prev) = &self.zeek_fields {
                if prev != line {
                    return Err("a second #fields line with other columns".into());
                }
                return Ok(());
            }
            self.zeek_fields = Some(line.to_vec());
            let names: Vec<String> = rest
                .split(|&c| c == b'\t')
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .collect();
            self.width = Some(names.len());
            if !self.fields.is_empty() {
                for f in &self.fields {
                    if !names.iter().any(|n| n == f) {
                        return Err(format!("--field {f:?}: no such column in #fields"));
                    }
                }
                self.cols = names
                    .iter()
                    .map(|n| {
                        if self.fields.contains(n) {
                            Sel::Loose
                        } else {
                            Sel::No
                        }
                    })
                    .collect();
            } else {
                self.cols = vec![Sel::Loose; names.len()];
            }
        } else if let Some(rest) = line.strip_prefix(b"#types\t") {
            for (i, t) in rest.split(|&c| c == b'\t').enumerate() {
                let addr_typed = matches!(
                    t,
                    b"addr" | b"subnet" | b"set[addr]" | b"vector[addr]" | b"set[subnet]"
                );
                if let Some(c) = self.cols.get_mut(i) {
                    if addr_typed && *c == Sel::Loose {
                        *c = Sel::Strict;
                    }
                }
            }
        }
        Ok(())
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Counters of one run (all inputs).
#[derive(Clone, Default)]
pub struct TextStats {
    /// Lines read.
    pub lines_read: u64,
    /// Lines written.
    pub lines_written: u64,
    /// Addresses (and prefixes, reverse names) washed.
    pub addresses: u64,
    /// Lines dropped (`--on-error skip`).
    pub skipped: u64,
    /// Lines written unchanged (`--on-error pass`).
    pub passed: u64,
    /// Values or lines replaced by the marker (`--on-error mark`).
    pub marked: u64,
    /// Distinct input addresses.
    pub distinct: DistinctCounter,
}

impl TextStats {
    /// Add another worker's counters.
    pub fn merge(&mut self, o: &TextStats) {
        self.lines_read += o.lines_read;
        self.lines_written += o.lines_written;
        self.addresses += o.addresses;
        self.skipped += o.skipped;
        self.passed += o.passed;
        self.marked += o.marked;
        self.distinct.merge(&o.distinct);
    }

    /// The stderr summary.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "ipwash: lines read {}, written {}, addresses washed {}",
            self.lines_read, self.lines_written, self.addresses
        );
        if self.skipped > 0 {
            s.push_str(&format!(", unreadable lines skipped {}", self.skipped));
        }
        if self.marked > 0 {
            s.push_str(&format!(", unreadable values marked {}", self.marked));
        }
        if self.passed > 0 {
            s.push_str(&format!(
                ", unreadable lines PASSED UNWASHED {}",
                self.passed
            ));
        }
        s.push_str(&format!(
            "; distinct addresses ~{}\n",
            self.distinct.estimate()
        ));
        s
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        let v = serde_json::json!({
            "lines_read": self.lines_read,
            "lines_written": self.lines_written,
            "addresses_washed": self.addresses,
            "lines_skipped": self.skipped,
            "lines_passed_unwashed": self.passed,
            "values_marked": self.marked,
            "distinct_addresses_estimate": self.distinct.estimate(),
        });
        let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Byte offset in the line.
    pub offset: usize,
    /// What was wrong.
    pub msg: String,
}

fn fault(offset: usize, msg: impl Into<String>) -> Fault {
    Fault {
        offset,
        msg: msg.into(),
    }
}

/// A line `--on-error fail` stopped at, relative to its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFault {
    /// 0-based line in the batch.
    pub line: u64,
    /// The fault.
    pub fault: Fault,
}

/// One worker: a washer, its cache and reused buffers.
pub struct Worker {
    /// The washer.
    pub washer: Washer,
    cache: AddrCache,
    found: Vec<Found>,
    spans: Vec<Range<usize>>,
    /// Counters.
    pub stats: TextStats,
}

impl Worker {
    /// A worker around `washer`, with an exact-address cache of
    /// `cache_size` entries where it pays (stateless, not cheap).
    pub fn new(washer: Washer, cache_size: usize) -> Self {
        let (n4, n6) = match &washer.technique {
            Technique::Stateless(m) => (
                if m.cheap(false) { 0 } else { cache_size },
                if m.cheap(true) { 0 } else { cache_size },
            ),
            Technique::Stateful(_) => (0, 0),
        };
        Worker {
            washer,
            cache: AddrCache::with_sizes(n4, n6),
            found: Vec::new(),
            spans: Vec::new(),
            stats: TextStats::default(),
        }
    }

    /// Wash one address.
    pub fn wash(&mut self, a: IpAddr) -> IpAddr {
        self.stats.addresses += 1;
        match a {
            IpAddr::V4(v) => self.stats.distinct.insert_v4(u32::from(v)),
            IpAddr::V6(v) => self.stats.distinct.insert_v6(u128::from(v)),
        }
        let washer = &mut self.washer;
        self.cache.get_or(a, |x| washer.wash(x, Side::Unknown))
    }

    fn write_found(&mut self, kind: Kind, out: &mut Vec<u8>) {
        match kind {
            Kind::Addr { addr, upper } => {
                let w = self.wash(addr);
                scanner::write_addr(out, w, upper);
            }
            Kind::Prefix { net, len, upper } => {
                let w = mask_ip(self.wash(net), len);
                scanner::write_addr(out, w, upper);
            }
            Kind::Reverse { net, n, upper } => {
                let (full, bits) = if net.is_ipv4() { (4, 8) } else { (32, 4) };
                let w = if n >= full {
                    self.wash(net)
                } else {
                    mask_ip(self.wash(net), n * bits)
                };
                scanner::write_reverse(out, w, n, upper);
            }
        }
    }

    /// Scan `text` and write it to `out` with every address washed.
    /// Returns the number of addresses found.
    pub fn wash_text(&mut self, text: &[u8], out: &mut Vec<u8>) -> usize {
        let mut found = std::mem::take(&mut self.found);
        found.clear();
        scanner::scan_into(text, &mut found);
        let mut last = 0;
        for f in &found {
            out.extend_from_slice(&text[last..f.span.start]);
            self.write_found(f.kind, out);
            last = f.span.end;
        }
        out.extend_from_slice(&text[last..]);
        let n = found.len();
        self.found = found;
        n
    }

    /// Wash one field's raw bytes by `sel`. A strict field without an
    /// address is an unreadable value: marked under `--on-error mark`,
    /// otherwise a fault at `offset`.
    fn wash_field(
        &mut self,
        raw: &[u8],
        sel: Sel,
        quoted: bool,
        spec: &Spec,
        offset: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        if sel == Sel::No {
            out.extend_from_slice(raw);
            return Ok(());
        }
        let start = out.len();
        let n = self.wash_text(raw, out);
        if n == 0 && sel == Sel::Strict && !is_unset(raw) {
            out.truncate(start);
            if spec.on_error == OnError::Mark {
                self.stats.marked += 1;
                if quoted {
                    out.push(b'"');
                }
                out.extend_from_slice(MARKER.as_bytes());
                if quoted {
                    out.push(b'"');
                }
                return Ok(());
            }
            let shown: String = String::from_utf8_lossy(raw).chars().take(40).collect();
            return Err(fault(offset, format!("not an address: {shown:?}")));
        }
        Ok(())
    }

    /// Wash one line (no terminator) into `out`. On a fault, `out` may hold
    /// part of the line: the caller cuts it back.
    pub fn wash_line(&mut self, spec: &Spec, line: &[u8], out: &mut Vec<u8>) -> Result<(), Fault> {
        if let Some(re) = &spec.regex {
            return self.wash_regex(re, spec, line, out);
        }
        match spec.format {
            Format::Plain => {
                self.wash_text(line, out);
                Ok(())
            }
            Format::Csv | Format::Tsv | Format::Zeek => self.wash_columns(spec, line, out),
            Format::Json => self.wash_json(spec, line, out),
        }
    }

    fn wash_regex(
        &mut self,
        re: &regex::bytes::Regex,
        spec: &Spec,
        line: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Fault> {
        let mut last = 0;
        let mut any = false;
        for caps in re.captures_iter(line) {
            let Some(m) = caps.get(1) else { continue };
            any = true;
            out.extend_from_slice(&line[last..m.start()]);
            self.wash_field(m.as_bytes(), Sel::Strict, false, spec, m.start(), out)?;
            last = m.end();
        }
        if !any {
            return Err(fault(0, "the --regex does not match (or group 1 is unset)"));
        }
        out.extend_from_slice(&line[last..]);
        Ok(())
    }

    fn wash_columns(&mut self, spec: &Spec, line: &[u8], out: &mut Vec<u8>) -> Result<(), Fault> {
        let body = strip_cr(line);
        if spec.format == Format::Zeek && body.first() == Some(&b'#') {
            out.extend_from_slice(line);
            return Ok(());
        }
        if body.is_empty() {
            out.extend_from_slice(line);
            return Ok(());
        }
        let mut spans = std::mem::take(&mut self.spans);
        spans.clear();
        let res = split_fields(body, spec.delim, spec.format == Format::Csv, &mut spans);
        let res = res.and_then(|()| match spec.width {
            Some(w) if spans.len() != w => Err(fault(
                body.len(),
                format!("{} fields where the header has {w}", spans.len()),
            )),
            _ => Ok(()),
        });
        let res = res.and_then(|()| {
            let mut last = 0;
            for (i, sp) in spans.iter().enumerate() {
                out.extend_from_slice(&body[last..sp.start]);
                let sel = spec.cols.get(i).copied().unwrap_or(spec.rest);
                let raw = &body[sp.clone()];
                let quoted = raw.first() == Some(&b'"');
                self.wash_field(raw, sel, quoted, spec, sp.start, out)?;
                last = sp.end;
            }
            out.extend_from_slice(&line[last..]);
            Ok(())
        });
        self.spans = spans;
        res
    }

    fn wash_json(&mut self, spec: &Spec, line: &[u8], out: &mut Vec<u8>) -> Result<(), Fault> {
        let body = strip_cr(line);
        if body.iter().all(u8::is_ascii_whitespace) {
            out.extend_from_slice(line);
            return Ok(());
        }
        let mut strings: Vec<(Range<usize>, Sel)> = Vec::new();
        let mut path = String::new();
        let mut i = 0;
        json_value(body, &mut i, &mut path, spec, &mut strings, 0)?;
        skip_ws(body, &mut i);
        if i != body.len() {
            return Err(fault(i, "text after the JSON value"));
        }
        let mut last = 0;
        for (sp, sel) in strings {
            // sp covers the string with its quotes.
            out.extend_from_slice(&body[last..sp.start]);
            let raw = &body[sp.clone()];
            let inner = &raw[1..raw.len() - 1];
            if inner.contains(&b'\\') {
                // Escapes: wash the decoded text and encode it again.
                let s: String = serde_json::from_slice(raw)
                    .map_err(|e| fault(sp.start, format!("bad JSON string: {e}")))?;
                let mut washed = Vec::new();
                self.wash_field(s.as_bytes(), sel, false, spec, sp.start, &mut washed)?;
                let w = String::from_utf8_lossy(&washed).into_owned();
                if w == s {
                    out.extend_from_slice(raw);
                } else {
                    let enc = serde_json::to_string(&w).unwrap_or_default();
                    out.extend_from_slice(enc.as_bytes());
                }
            } else {
                out.push(b'"');
                self.wash_field(inner, sel, false, spec, sp.start + 1, out)?;
                out.push(b'"');
            }
            last = sp.end;
        }
        out.extend_from_slice(&line[last..]);
        Ok(())
    }

    /// Wash a batch of whole lines (each ending in `\n` except perhaps the
    /// last) into `out`. Stops at the first line `--on-error fail` rejects;
    /// everything before it is in `out`. Also returns the batch's count of
    /// newlines (where the next batch's line numbers start).
    pub fn wash_batch(
        &mut self,
        spec: &Spec,
        batch: &[u8],
        out: &mut Vec<u8>,
    ) -> (Option<BatchFault>, u64) {
        let newlines = memchr::memchr_iter(b'\n', batch).count() as u64;
        if spec.format == Format::Plain && spec.regex.is_none() {
            // Nothing in a plain line can be unreadable, and no address
            // spans a newline: the batch is scanned in one go.
            let lines = newlines + u64::from(!batch.is_empty() && batch.last() != Some(&b'\n'));
            self.stats.lines_read += lines;
            self.stats.lines_written += lines;
            self.wash_text(batch, out);
            return (None, newlines);
        }
        (self.wash_lines(spec, batch, out), newlines)
    }

    /// [`Worker::wash_batch`] one line at a time.
    fn wash_lines(&mut self, spec: &Spec, batch: &[u8], out: &mut Vec<u8>) -> Option<BatchFault> {
        let mut n = 0u64;
        let mut rest = batch;
        while !rest.is_empty() {
            let (line, term) = match memchr::memchr(b'\n', rest) {
                Some(p) => (&rest[..p], &rest[p..p + 1]),
                None => (rest, &rest[rest.len()..]),
            };
            rest = &rest[line.len() + term.len()..];
            self.stats.lines_read += 1;
            let start = out.len();
            match self.wash_line(spec, line, out) {
                Ok(()) => {
                    out.extend_from_slice(term);
                    self.stats.lines_written += 1;
                }
                Err(f) => {
                    out.truncate(start);
                    match spec.on_error {
                        OnError::Fail => return Some(BatchFault { line: n, fault: f }),
                        OnError::Skip => self.stats.skipped += 1,
                        OnError::Pass => {
                            self.stats.passed += 1;
                            self.stats.lines_written += 1;
                            out.extend_from_slice(line);
                            out.extend_from_slice(term);
                        }
                        OnError::Mark => {
                            self.stats.marked += 1;
                            self.stats.lines_written += 1;
                            out.extend_from_slice(MARKER.as_bytes());
                            if line.last() == Some(&b'\r') {
                                out.push(b'\r');
                            }
                            out.extend_from_slice(term);
                        }
                    }
                }
            }
            n += 1;
        }
        None
    }
}

fn is_unset(raw: &[u8]) -> bool {
    let t = raw.trim_ascii();
    let t = t
        .strip_prefix(b"\"")
        .and_then(|x| x.strip_suffix(b"\""))
        .unwrap_or(t)
        .trim_ascii();
    t.is_empty() || t == b"-" || t == b"(empty)"
}

/// Split `line` into raw field spans (quotes included). With `quoting`, a
/// field starting with `"` runs to the closing quote (`""` inside is a
/// quote) and must be followed by the delimiter or the end.
pub fn split_fields(
    line: &[u8],
    delim: u8,
    quoting: bool,
    spans: &mut Vec<Range<usize>>,
) -> Result<(), Fault> {
    let len = line.len();
    let mut i = 0;
    loop {
        let start = i;
        if quoting && line.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match memchr::memchr(b'"', &line[i..]) {
                    None => {
                        return Err(fault(
                            start,
                            "unterminated quoted field (fields spanning lines are not read)",
                        ))
                    }
                    Some(q) => {
                        i += q + 1;
                        if line.get(i) == Some(&b'"') {
                            i += 1;
                            continue;
                        }
                        break;
                    }
                }
            }
            if i < len && line[i] != delim {
                return Err(fault(i, "text after a closing quote"));
            }
        } else {
            i = memchr::memchr(delim, &line[i..]).map_or(len, |p| i + p);
        }
        spans.push(start..i);
        if i >= len {
            return Ok(());
        }
        i += 1;
    }
}

fn skip_ws(s: &[u8], i: &mut usize) {
    while *i < s.len() && matches!(s[*i], b' ' | b'\t' | b'\r' | b'\n') {
        *i += 1;
    }
}

fn json_sel(spec: &Spec, path: &str) -> Sel {
    if spec.paths.is_empty() {
        return Sel::Loose;
    }
    for p in &spec.paths {
        if path == p
            || (path.len() > p.len()
                && path.starts_with(p.as_str())
                && path.as_bytes()[p.len()] == b'.')
        {
            return Sel::Strict;
        }
    }
    Sel::No
}

/// The end of the JSON string starting at `s[i] == '"'` (one past the
/// closing quote).
fn json_string_end(s: &[u8], i: usize) -> Result<usize, Fault> {
    let mut j = i + 1;
    loop {
        match memchr::memchr2(b'"', b'\\', &s[j..]) {
            None => return Err(fault(i, "unterminated JSON string")),
            Some(p) => {
                j += p;
                if s[j] == b'\\' {
                    j += 2;
                    if j > s.len() {
                        return Err(fault(i, "unterminated JSON string"));
                    }
                } else {
                    return Ok(j + 1);
                }
            }
        }
    }
}

const MAX_DEPTH: usize = 128;

fn json_value(
    s: &[u8],
    i: &mut usize,
    path: &mut String,
    spec: &Spec,
    strings: &mut Vec<(Range<usize>, Sel)>,
    depth: usize,
) -> Result<(), Fault> {
    if depth > MAX_DEPTH {
        return Err(fault(*i, "JSON nested too deep"));
    }
    skip_ws(s, i);
    let Some(&c) = s.get(*i) else {
        return Err(fault(*i, "a JSON value was expected"));
    };
    match c {
        b'"' => {
            let e = json_string_end(s, *i)?;
            let sel = json_sel(spec, path);
            if sel != Sel::No {
                strings.push((*i..e, sel));
            }
            *i = e;
        }
        b'{' => {
            *i += 1;
            skip_ws(s, i);
            if s.get(*i) == Some(&b'}') {
                *i += 1;
                return Ok(());
            }
            loop {
                skip_ws(s, i);
                if s.get(*i) != Some(&b'"') {
                    return Err(fault(*i, "an object key was expected"));
                }
                let e = json_string_end(s, *i)?;
                let key = String::from_utf8_lossy(&s[*i + 1..e - 1]).into_owned();
                *i = e;
                skip_ws(s, i);
                if s.get(*i) != Some(&b':') {
                    return Err(fault(*i, "':' was expected"));
                }
                *i += 1;
                let keep = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key);
                json_value(s, i, path, spec, strings, depth + 1)?;
                path.truncate(keep);
                skip_ws(s, i);
                match s.get(*i) {
                    Some(b',') => *i += 1,
                    Some(b'}') => {
                        *i += 1;
                        return Ok(());
                    }
                    _ => return Err(fault(*i, "',' or '}' was expected")),
                }
            }
        }
        b'[' => {
            *i += 1;
            skip_ws(s, i);
            if s.get(*i) == Some(&b']') {
                *i += 1;
                return Ok(());
            }
            loop {
                json_value(s, i, path, spec, strings, depth + 1)?;
                skip_ws(s, i);
                match s.get(*i) {
                    Some(b',') => *i += 1,
                    Some(b']') => {
                        *i += 1;
                        return Ok(());
                    }
                    _ => return Err(fault(*i, "',' or ']' was expected")),
                }
            }
        }
        b't' | b'f' | b'n' => {
            let lit: &[u8] = match c {
                b't' => b"true",
                b'f' => b"false",
                _ => b"null",
            };
            if !s[*i..].starts_with(lit) {
                return Err(fault(*i, "bad JSON literal"));
            }
            *i += lit.len();
        }
        b'-' | b'0'..=b'9' => {
            let st = *i;
            while *i < s.len() && matches!(s[*i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                *i += 1;
            }
            if std::str::from_utf8(&s[st..*i])
                .ok()
                .and_then(|t| t.parse::<f64>().ok())
                .is_none()
            {
                return Err(fault(st, "bad JSON number"));
            }
        }
        _ => return Err(fault(*i, "not JSON")),
    }
    Ok(())
}
