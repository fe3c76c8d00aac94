//! One C-DNS block: find every address-bearing field, decide how each
//! `ip-address` table entry is treated from the fields that reference it,
//! then rewrite the block.
//!
//! Two passes over the block's bytes. The first records positions only (map
//! keys may come in any order, and the role and family of a table entry are
//! known only once every reference has been seen). The second washes byte
//! strings in place (same length) and records splices for everything whose
//! encoded length changes: shortened entries under truncation, re-pointed
//! indices, the grown `ip-address` table. Untouched bytes are copied as they
//! are.
//!
//! Table indices are 0-based (RFC 8618, and checked against the samples: a
//! Q/R signature's `server-address-index` 0 names the first entry).

use std::collections::HashMap;

use minicbor::decode::Decoder;

use super::cbor::{
    bstr, key, put_head, uint, uint_map, Bad, Bstr, Edits, PResult, Seq, Uint, Walker,
};
use super::preamble::Params;
use super::{CdnsOptions, CdnsStats};
use crate::dns::{find_ecs, opt_ecs, EcsField};
use crate::wash::{Side, Washer};

/// How the family of a referenced address is found.
#[derive(Debug, Clone, Copy)]
enum Fam {
    Known(Option<bool>),
    /// From the transport flags of this Q/R signature.
    Sig(u64),
    /// From the transport flags of this malformed-message data entry.
    Mmd(u64),
}

/// A field holding an index into the `ip-address` table.
#[derive(Debug, Clone, Copy)]
struct Ref {
    at: Uint,
    side: Side,
    fam: Fam,
}

/// What happens to one table entry (or to one use of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Treat {
    /// Left as it is (the server side under `--scope clients`).
    Keep,
    /// Washed as a prefix of `bits` bits, stored in `len` bytes.
    Wash { v6: bool, bits: u8, len: usize },
    /// The family cannot be told: every byte set to zero (fail closed).
    Blank,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    b: Bstr,
    treat: Option<Treat>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Sig {
    v6: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Mmd {
    v6: Option<bool>,
    payload: Option<Bstr>,
}

/// Per-block state, reused from block to block.
#[derive(Debug, Default)]
pub(super) struct BlockWasher {
    w: Walker,
    params_index: u64,
    table: Option<Seq>,
    entries: Vec<Entry>,
    classtypes: Vec<Option<u64>>,
    name_rdata: Vec<Option<Bstr>>,
    /// name-rdata indices used as OPT RDATA.
    opt_rdata: Vec<u64>,
    sigs: Vec<Sig>,
    /// (classtype index, rdata index) of each RR.
    rrs: Vec<(Option<u64>, Option<u64>)>,
    mmds: Vec<Mmd>,
    refs: Vec<Ref>,
    records: u64,
    extras: Vec<(usize, Treat)>,
    extra_index: HashMap<(usize, Treat), u64>,
    ecs: Vec<EcsField>,
    found: crate::edns::Found,
    scratch: Vec<u8>,
    pub(super) edits: Edits,
}

fn flags_v6(u: Option<Uint>) -> Option<bool> {
    u.map(|u| u.value & 1 != 0)
}

impl BlockWasher {
    fn reset(&mut self) {
        self.params_index = 0;
        self.table = None;
        self.entries.clear();
        self.classtypes.clear();
        self.name_rdata.clear();
        self.opt_rdata.clear();
        self.sigs.clear();
        self.rrs.clear();
        self.mmds.clear();
        self.refs.clear();
        self.records = 0;
        self.extras.clear();
        self.extra_index.clear();
        self.edits.clear();
    }

    /// Wash the block in `buf` (modified in place) and append the result to
    /// `out`. Positions in errors are relative to `buf`.
    pub(super) fn wash(
        &mut self,
        buf: &mut [u8],
        out: &mut Vec<u8>,
        params: &[Params],
        washer: &mut Washer,
        opts: &CdnsOptions,
        stats: &mut CdnsStats,
    ) -> PResult<()> {
        self.reset();
        self.parse(buf)?;
        let p = params
            .get(self.params_index as usize)
            .copied()
            .ok_or_else(|| {
                Bad::new(
                    0,
                    format!("block-parameters-index {} out of range", self.params_index),
                )
            })?;
        self.rewrite(buf, &p, washer, opts, stats)?;
        self.edits.apply(buf, out)
    }

    // ---- pass 1: positions ----

    fn parse(&mut self, buf: &[u8]) -> PResult<()> {
        let mut d = Decoder::new(buf);
        let mut m = Seq::map(&mut d)?;
        while m.next(&mut d)? {
            match key(&mut d, &mut self.w)? {
                Some(0) => self.block_preamble(&mut d)?,
                Some(2) => self.tables(&mut d)?,
                Some(3) => self.query_responses(&mut d)?,
                Some(4) => self.address_events(&mut d)?,
                Some(5) => self.malformed_messages(&mut d)?,
                _ => self.w.skip(&mut d)?,
            }
        }
        if d.position() != buf.len() {
            return Err(Bad::new(d.position(), "data after the block map"));
        }
        Ok(())
    }

    fn block_preamble(&mut self, d: &mut Decoder<'_>) -> PResult<()> {
        let mut m = Seq::map(d)?;
        while m.next(d)? {
            match key(d, &mut self.w)? {
                Some(1) => self.params_index = uint(d, "block-parameters-index")?.value,
                _ => self.w.skip(d)?,
            }
        }
        Ok(())
    }

    fn tables(&mut self, d: &mut Decoder<'_>) -> PResult<()> {
        let mut m = Seq::map(d)?;
        while m.next(d)? {
            match key(d, &mut self.w)? {
                Some(0) => {
                    let mut a = Seq::array(d)?;
                    while a.next(d)? {
                        let pos = d.position();
                        match bstr(d, &mut self.w)? {
                            Some(b) => self.entries.push(Entry { b, treat: None }),
                            None => {
                                return Err(Bad::new(
                                    pos,
                                    "ip-address entry is not a definite-length byte string",
                                ))
                            }
                        }
                    }
                    self.table = Some(a);
                }
                Some(1) => {
                    let mut a = Seq::array(d)?;
                    while a.next(d)? {
                        let mut t = None;
                        uint_map(d, &mut self.w, &[(0, "classtype type")], |_, u| {
                            t = Some(u.value)
                        })?;
                        self.classtypes.push(t);
                    }
                }
                Some(2) => {
                    let mut a = Seq::array(d)?;
                    while a.next(d)? {
                        let b = bstr(d, &mut self.w)?;
                        self.name_rdata.push(b);
                    }
                }
                Some(3) => {
                    let mut a = Seq::array(d)?;
                    while a.next(d)? {
                        self.qr_sig(d)?;
                    }
                }
                Some(7) => {
                    let mut a = Seq::array(d)?;
                    while a.next(d)? {
                        let (mut ct, mut rd) = (None, None);
                        uint_map(
                            d,
                            &mut self.w,
                            &[(1, "classtype-index"), (3, "rdata-index")],
                            |k, u| match k {
                                1 => ct = Some(u.value),
                                _ => rd = Some(u.value),
                            },
                        )?;
                        self.rrs.push((ct, rd));
                    }
                }
                Some(8) => {
                    let mut a = Seq::array(d)?;
                    while a.next(d)? {
                        self.mm_data(d)?;
                    }
                }
                _ => self.w.skip(d)?,
            }
        }
        Ok(())
    }

    fn qr_sig(&mut self, d: &mut Decoder<'_>) -> PResult<()> {
        let (mut server, mut flags) = (None, None);
        let opt_rdata = &mut self.opt_rdata;
        uint_map(
            d,
            &mut self.w,
            &[
                (0, "server-address-index"),
                (2, "qr-transport-flags"),
                (15, "opt-rdata-index"),
            ],
            |k, u| match k {
                0 => server = Some(u),
                2 => flags = Some(u),
                _ => opt_rdata.push(u.value),
            },
        )?;
        let v6 = flags_v6(flags);
        self.sigs.push(Sig { v6 });
        if let Some(at) = server {
            self.refs.push(Ref {
                at,
                side: Side::Server,
                fam: Fam::Known(v6),
            });
        }
        Ok(())
    }

    fn mm_data(&mut self, d: &mut Decoder<'_>) -> PResult<()> {
        let (mut server, mut flags, mut payload) = (None, None, None);
        let mut m = Seq::map(d)?;
        while m.next(d)? {
            match key(d, &mut self.w)? {
                Some(0) => server = Some(uint(d, "server-address-index")?),
                Some(2) => flags = Some(uint(d, "mm-transport-flags")?),
                Some(3) => {
                    let pos = d.position();
                    payload = Some(bstr(d, &mut self.w)?.ok_or_else(|| {
                        Bad::new(pos, "mm-payload is not a definite-length byte string")
                    })?);
                }
                _ => self.w.skip(d)?,
            }
        }
        let v6 = flags_v6(flags);
        self.mmds.push(Mmd { v6, payload });
        if let Some(at) = server {
            self.refs.push(Ref {
                at,
                side: Side::Server,
                fam: Fam::Known(v6),
            });
        }
        Ok(())
    }

    fn query_responses(&mut self, d: &mut Decoder<'_>) -> PResult<()> {
        let mut a = Seq::array(d)?;
        while a.next(d)? {
            self.records += 1;
            let (mut client, mut sig) = (None, None);
            uint_map(
                d,
                &mut self.w,
                &[(1, "client-address-index"), (4, "qr-signature-index")],
                |k, u| match k {
                    1 => client = Some(u),
                    _ => sig = Some(u.value),
                },
            )?;
            if let Some(at) = client {
                self.refs.push(Ref {
                    at,
                    side: Side::Client,
                    fam: sig.map_or(Fam::Known(None), Fam::Sig),
                });
            }
        }
        Ok(())
    }

    fn address_events(&mut self, d: &mut Decoder<'_>) -> PResult<()> {
        let mut a = Seq::array(d)?;
        while a.next(d)? {
            let (mut ty, mut addr, mut flags) = (None, None, None);
            uint_map(
                d,
                &mut self.w,
                &[
                    (0, "ae-type"),
                    (2, "ae-address-index"),
                    (3, "ae-transport-flags"),
                ],
                |k, u| match k {
                    0 => ty = Some(u.value),
                    2 => addr = Some(u),
                    _ => flags = Some(u),
                },
            )?;
            // Without transport flags the event type tells ICMP from ICMPv6.
            let v6 = flags_v6(flags).or(match ty {
                Some(1 | 2) => Some(false),
                Some(3..=5) => Some(true),
                _ => None,
            });
            if let Some(at) = addr {
                self.refs.push(Ref {
                    at,
                    side: Side::Client,
                    fam: Fam::Known(v6),
                });
            }
        }
        Ok(())
    }

    fn malformed_messages(&mut self, d: &mut Decoder<'_>) -> PResult<()> {
        let mut a = Seq::array(d)?;
        while a.next(d)? {
            let (mut client, mut data) = (None, None);
            let mut m = Seq::map(d)?;
            while m.next(d)? {
                match key(d, &mut self.w)? {
                    Some(1) => client = Some(uint(d, "client-address-index")?),
                    Some(3) => data = Some(uint(d, "message-data-index")?.value),
                    _ => self.w.skip(d)?,
                }
            }
            if let Some(at) = client {
                self.refs.push(Ref {
                    at,
                    side: Side::Client,
                    fam: data.map_or(Fam::Known(None), Fam::Mmd),
                });
            }
        }
        Ok(())
    }

    // ---- pass 2: rewrite ----

    fn rewrite(
        &mut self,
        buf: &mut [u8],
        p: &Params,
        washer: &mut Washer,
        opts: &CdnsOptions,
        stats: &mut CdnsStats,
    ) -> PResult<()> {
        stats.records += self.records;
        stats.addresses += self.entries.len() as u64;
        let n = self.entries.len();
        // Server references first, so a shared entry stays with the server
        // and the client copy is the one appended.
        for pass_server in [true, false] {
            for i in 0..self.refs.len() {
                let r = self.refs[i];
                if (r.side == Side::Server) != pass_server {
                    continue;
                }
                let Ok(idx) = usize::try_from(r.at.value) else {
                    continue;
                };
                // A dangling index names no address; it is left as it is.
                let Some(e) = self.entries.get(idx).copied() else {
                    continue;
                };
                let fam = match r.fam {
                    Fam::Known(f) => f,
                    Fam::Sig(s) => self.sigs.get(s as usize).and_then(|s| s.v6),
                    Fam::Mmd(m) => self.mmds.get(m as usize).and_then(|m| m.v6),
                };
                let t = treat(r.side, fam, e.b.len, p, washer, opts);
                match e.treat {
                    None => self.entries[idx].treat = Some(t),
                    Some(prev) if prev == t => {}
                    Some(_) => {
                        let new = match self.extra_index.get(&(idx, t)) {
                            Some(&k) => k,
                            None => {
                                let k = (n + self.extras.len()) as u64;
                                self.extras.push((idx, t));
                                self.extra_index.insert((idx, t), k);
                                k
                            }
                        };
                        self.edits
                            .replace(r.at.pos, r.at.end, |o| put_head(o, 0, new));
                    }
                }
            }
        }

        // Appended copies, made from the original bytes before any washing.
        if let (false, Some(table)) = (self.extras.is_empty(), self.table) {
            self.scratch.clear();
            for k in 0..self.extras.len() {
                let (idx, t) = self.extras[k];
                let b = self.entries[idx].b;
                let mut tmp = buf[b.range()].to_vec();
                let len = apply(&mut tmp, t, washer, stats);
                put_head(&mut self.scratch, 2, len as u64);
                self.scratch.extend_from_slice(&tmp[..len]);
            }
            if let Some(count) = table.len {
                let total = count + self.extras.len() as u64;
                self.edits
                    .replace(table.hdr, table.body, |o| put_head(o, 4, total));
            }
            let blob = &self.scratch;
            self.edits
                .replace(table.end, table.end, |o| o.extend_from_slice(blob));
            stats.split_entries += self.extras.len() as u64;
        }

        for i in 0..n {
            let e = self.entries[i];
            let t = e
                .treat
                .unwrap_or_else(|| treat(Side::Unknown, None, e.b.len, p, washer, opts));
            let bytes = &mut buf[e.b.range()];
            let len = apply(bytes, t, washer, stats);
            if len < e.b.len {
                let kept = &bytes[..len];
                self.edits.replace(e.b.hdr, e.b.start + e.b.len, |o| {
                    put_head(o, 2, len as u64);
                    o.extend_from_slice(kept);
                });
            }
        }

        self.wash_opt_rdata(buf, washer, stats)?;
        self.wash_answers(buf, washer, stats);
        self.wash_mm_payloads(buf, washer, stats);
        if washer.reverse_names == crate::revname::ReverseNames::Wash {
            self.wash_names(buf, washer, stats);
        }
        Ok(())
    }

    /// Reverse names in `name-rdata` entries (not those used as OPT RDATA).
    fn wash_names(&mut self, buf: &mut [u8], washer: &mut Washer, stats: &mut CdnsStats) {
        // The RR type of each entry used as RDATA, when one type is known:
        // None for RDATA of an RR whose type cannot be told (no or a
        // dangling class/type index, a class/type without a type) or of
        // RRs of two types.
        let mut rtype: HashMap<u64, Option<u64>> = HashMap::new();
        for &(ct, rd) in &self.rrs {
            let Some(rd) = rd else {
                continue;
            };
            let t = ct.and_then(|c| self.classtypes.get(c as usize).copied().flatten());
            let e = rtype.entry(rd).or_insert(t);
            if *e != t {
                *e = None;
            }
        }
        for i in 0..self.name_rdata.len() {
            let Some(b) = self.name_rdata[i] else {
                continue;
            };
            if self.opt_rdata.binary_search(&(i as u64)).is_ok() {
                continue;
            }
            let entry = &buf[b.range()];
            if !crate::dnsenc::may_hold_reverse(entry) {
                continue;
            }
            let ty = rtype.get(&(i as u64)).copied().flatten();
            let r = crate::revwash::wash_stored(entry, ty, washer, &mut stats.names);
            match r {
                Ok(None) => {}
                Ok(Some(new)) if new.len() == b.len => buf[b.range()].copy_from_slice(&new),
                Ok(Some(new)) => {
                    self.edits.replace(b.hdr, b.start + b.len, |o| {
                        put_head(o, 2, new.len() as u64);
                        o.extend_from_slice(&new);
                    });
                }
                Err(_) => {
                    buf[b.range()].fill(0);
                    stats.blanked += 1;
                }
            }
        }
    }

    fn wash_opt_rdata(
        &mut self,
        buf: &mut [u8],
        washer: &mut Washer,
        stats: &mut CdnsStats,
    ) -> PResult<()> {
        for &(ct, rd) in &self.rrs {
            let is_opt = ct
                .and_then(|c| self.classtypes.get(c as usize).copied().flatten())
                .is_some_and(|t| t == 41);
            if let (true, Some(rd)) = (is_opt, rd) {
                self.opt_rdata.push(rd);
            }
        }
        self.opt_rdata.sort_unstable();
        self.opt_rdata.dedup();
        for &i in &self.opt_rdata {
            let Some(slot) = self.name_rdata.get(i as usize) else {
                continue;
            };
            let Some(b) = *slot else {
                return Err(Bad::new(
                    0,
                    format!("OPT RDATA entry {i} is not a definite-length byte string"),
                ));
            };
            let rdata = &mut buf[b.range()];
            if opt_ecs(rdata, 0, rdata.len(), &mut self.ecs).is_err() {
                // Cannot tell whether it holds a client subnet: fail closed.
                rdata.fill(0);
                stats.blanked += 1;
                continue;
            }
            for f in &self.ecs {
                if let Some(a) = rdata.get_mut(f.offset..f.offset + f.len) {
                    if washer.wash_prefix(a, f.family == 2, f.source_prefix, Side::Client) {
                        stats.ecs_rewritten += 1;
                    }
                }
            }
            self.ecs.clear();
            crate::edns::wash_opt_rdata(rdata, washer, &mut self.found);
        }
        Ok(())
    }

    /// `--answers`: the RDATA of every A and AAAA record in the RR table,
    /// each `name-rdata` entry once, through the address map.
    fn wash_answers(&mut self, buf: &mut [u8], washer: &mut Washer, stats: &mut CdnsStats) {
        if !washer.answers {
            return;
        }
        let mut seen = std::collections::BTreeSet::new();
        for &(ct, rd) in &self.rrs {
            let t = ct.and_then(|c| self.classtypes.get(c as usize).copied().flatten());
            let (Some(t @ (1 | 28)), Some(rd)) = (t, rd) else {
                continue;
            };
            let Some(Some(b)) = self.name_rdata.get(rd as usize).copied() else {
                continue;
            };
            let v6 = t == 28;
            if b.len != if v6 { 16 } else { 4 } || !seen.insert(rd) {
                continue;
            }
            let a = crate::edns::AddrField {
                offset: 0,
                v6,
                kind: crate::edns::AddrKind::Answer,
            };
            if crate::edns::wash_addr(&mut buf[b.range()], &a, washer) {
                stats.answers_rewritten += 1;
            }
        }
        // RDATA of an RR whose type cannot be told (no or a dangling
        // class/type index, a class/type without a type) may be an A or
        // AAAA record's: zeroed when it has their length.
        let mut blanked = std::collections::BTreeSet::new();
        for &(ct, rd) in &self.rrs {
            let t = ct.and_then(|c| self.classtypes.get(c as usize).copied().flatten());
            let (None, Some(rd)) = (t, rd) else {
                continue;
            };
            let Some(Some(b)) = self.name_rdata.get(rd as usize).copied() else {
                continue;
            };
            if (b.len == 4 || b.len == 16) && blanked.insert(rd) {
                buf[b.range()].fill(0);
                stats.blanked += 1;
            }
        }
    }

    fn wash_mm_payloads(&mut self, buf: &mut [u8], washer: &mut Washer, stats: &mut CdnsStats) {
        // A malformed message that cannot be searched for ECS, EDNS
        // identifiers or reverse names reliably keeps its 12-byte header
        // (no addresses) and has the rest zeroed.
        let blank = |msg: &mut [u8], stats: &mut CdnsStats| {
            if let Some(rest) = msg.get_mut(12..) {
                rest.fill(0);
            }
            stats.blanked += 1;
        };
        for m in &self.mmds {
            let Some(b) = m.payload else { continue };
            let msg = &mut buf[b.range()];
            if find_ecs(msg, &mut self.ecs).is_err() {
                blank(msg, stats);
                continue;
            }
            for f in &self.ecs {
                if let Some(a) = msg.get_mut(f.offset..f.offset + f.len) {
                    if washer.wash_prefix(a, f.family == 2, f.source_prefix, Side::Client) {
                        stats.ecs_rewritten += 1;
                    }
                }
            }
            self.ecs.clear();
            if crate::edns::wash_message(msg, washer, &mut self.found).is_err() {
                blank(msg, stats);
                continue;
            }
            if washer.reverse_names != crate::revname::ReverseNames::Wash {
                continue;
            }
            // Reverse names as in packets; the byte string takes the new
            // length (nothing else points into it).
            match crate::revwash::rewrite_message(msg, washer, &mut stats.names) {
                Ok(None) => {}
                Ok(Some(new)) if new.len() == b.len => msg.copy_from_slice(&new),
                Ok(Some(new)) => self.edits.replace(b.hdr, b.start + b.len, |o| {
                    put_head(o, 2, new.len() as u64);
                    o.extend_from_slice(&new);
                }),
                Err(_) => blank(msg, stats),
            }
        }
    }
}

/// Decide how an entry of `len` bytes, used on `side` with family `fam`
/// (true = IPv6) when known, is treated.
fn treat(
    side: Side,
    fam: Option<bool>,
    len: usize,
    p: &Params,
    washer: &Washer,
    opts: &CdnsOptions,
) -> Treat {
    if !washer.in_scope(side) {
        return Treat::Keep;
    }
    let expect = |v6: bool| -> bool {
        let full = if v6 { 128u8 } else { 32 };
        let sides: &[Side] = match side {
            Side::Unknown => &[Side::Client, Side::Server],
            s => std::slice::from_ref(match s {
                Side::Client => &Side::Client,
                _ => &Side::Server,
            }),
        };
        sides
            .iter()
            .any(|&s| usize::from(p.bits(s, v6).unwrap_or(full)).div_ceil(8) == len)
    };
    let v6 = match fam {
        Some(f) => f,
        None => match (expect(false), expect(true)) {
            (true, false) => false,
            (false, true) => true,
            (false, false) if len == 4 => false,
            (false, false) if len == 16 => true,
            _ => return Treat::Blank,
        },
    };
    let full: u8 = if v6 { 128 } else { 32 };
    let stored = p.bits(side, v6).unwrap_or(full);
    let mut bits = stored.min(u8::try_from(len.saturating_mul(8)).unwrap_or(u8::MAX));
    let mut out_len = len.min(usize::from(full) / 8);
    if let Some((p4, p6)) = washer.info.truncate {
        bits = bits.min(if v6 { p6 } else { p4 });
        if opts.mark_output {
            out_len = out_len.min(usize::from(bits).div_ceil(8));
        }
    }
    Treat::Wash {
        v6,
        bits,
        len: out_len,
    }
}

/// Apply a treatment to entry bytes in place; return the stored length.
fn apply(bytes: &mut [u8], t: Treat, washer: &mut Washer, stats: &mut CdnsStats) -> usize {
    match t {
        Treat::Keep => bytes.len(),
        Treat::Blank => {
            bytes.fill(0);
            stats.blanked += 1;
            bytes.len()
        }
        Treat::Wash { v6, bits, len } => {
            let len = len.min(bytes.len());
            // Scope was decided in `treat`; the washer still applies --keep.
            if washer.wash_prefix(&mut bytes[..len], v6, bits, Side::Unknown) {
                stats.rewritten += 1;
            }
            len
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wash::{Identity, Scope, Technique, TechniqueInfo};
    use std::sync::Arc;

    fn w(scope: Scope, truncate: Option<(u8, u8)>) -> Washer {
        let mut w = Washer::new(Technique::Stateless(Arc::new(Identity)));
        w.scope = scope;
        w.info = TechniqueInfo {
            name: "t".into(),
            truncate,
            ..Default::default()
        };
        w
    }

    const FULL: Params = Params {
        prefix: [None; 4],
        ticks_per_second: None,
    };
    const O: CdnsOptions = CdnsOptions {
        keep_collection_info: false,
        mark_output: true,
    };

    #[test]
    fn family_from_flags_or_length() {
        let w = w(Scope::All, None);
        let t = |side, fam, len, p: &Params| treat(side, fam, len, p, &w, &O);
        assert_eq!(
            t(Side::Client, None, 4, &FULL),
            Treat::Wash {
                v6: false,
                bits: 32,
                len: 4
            }
        );
        assert_eq!(
            t(Side::Client, None, 16, &FULL),
            Treat::Wash {
                v6: true,
                bits: 128,
                len: 16
            }
        );
        assert_eq!(t(Side::Unknown, None, 7, &FULL), Treat::Blank);
        // Prefix storage: client /24 (3 bytes) and /48 (6 bytes) tell apart;
        // /24 and /20 for the two families both give 3 bytes: ambiguous.
        let p = Params {
            prefix: [Some(24), Some(48), None, None],
            ticks_per_second: None,
        };
        assert_eq!(
            t(Side::Client, None, 3, &p),
            Treat::Wash {
                v6: false,
                bits: 24,
                len: 3
            }
        );
        assert_eq!(
            t(Side::Client, None, 6, &p),
            Treat::Wash {
                v6: true,
                bits: 48,
                len: 6
            }
        );
        let amb = Params {
            prefix: [Some(24), Some(20), None, None],
            ticks_per_second: None,
        };
        assert_eq!(t(Side::Client, None, 3, &amb), Treat::Blank);
        // Flags win over length.
        assert_eq!(
            t(Side::Client, Some(true), 3, &amb),
            Treat::Wash {
                v6: true,
                bits: 20,
                len: 3
            }
        );
    }

    #[test]
    fn scope_and_truncation() {
        let c = w(Scope::Clients, Some((24, 48)));
        assert_eq!(
            treat(Side::Server, Some(false), 4, &FULL, &c, &O),
            Treat::Keep
        );
        assert_eq!(
            treat(Side::Client, Some(false), 4, &FULL, &c, &O),
            Treat::Wash {
                v6: false,
                bits: 24,
                len: 3
            }
        );
        // Without marking, lengths stay (the prefix keys are not written).
        let copy = CdnsOptions {
            mark_output: false,
            ..O
        };
        assert_eq!(
            treat(Side::Client, Some(true), 16, &FULL, &c, &copy),
            Treat::Wash {
                v6: true,
                bits: 48,
                len: 16
            }
        );
    }
}
