//! Run statistics: packets read, written, rewritten, dropped by reason,
//! distinct addresses. Printed on stderr at the end and optionally as JSON.

use std::collections::BTreeMap;

/// A HyperLogLog distinct counter (precision 12: 4 KiB, about 1.6 % error),
/// so counting distinct addresses needs bounded memory whatever the input.
#[derive(Clone)]
pub struct DistinctCounter {
    regs: Vec<u8>,
}

const HLL_P: u32 = 12;

impl Default for DistinctCounter {
    fn default() -> Self {
        DistinctCounter {
            regs: vec![0; 1 << HLL_P],
        }
    }
}

impl DistinctCounter {
    /// Count one IPv4 address.
    #[inline]
    pub fn insert_v4(&mut self, a: u32) {
        self.insert_hashed(a as u64 | 1 << 40);
    }

    /// Count one IPv6 address.
    #[inline]
    pub fn insert_v6(&mut self, a: u128) {
        self.insert_hashed((a as u64) ^ ((a >> 64) as u64).rotate_left(23) ^ 0x5555);
    }

    #[inline]
    fn insert_hashed(&mut self, mut x: u64) {
        // A fixed mixer (splitmix64's finaliser): cheap, and the same on
        // every run, so counts are reproducible.
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
        let idx = (x >> (64 - HLL_P)) as usize;
        let rank = ((x << HLL_P) | (1 << (HLL_P - 1))).leading_zeros() as u8 + 1;
        if let Some(r) = self.regs.get_mut(idx) {
            if *r < rank {
                *r = rank;
            }
        }
    }

    /// Union with another counter.
    pub fn merge(&mut self, o: &DistinctCounter) {
        for (a, b) in self.regs.iter_mut().zip(&o.regs) {
            *a = (*a).max(*b);
        }
    }

    /// The estimate.
    pub fn estimate(&self) -> u64 {
        let m = self.regs.len() as f64;
        let sum: f64 = self.regs.iter().map(|&r| 2f64.powi(-(r as i32))).sum();
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let e = alpha * m * m / sum;
        let zeros = self.regs.iter().filter(|&&r| r == 0).count();
        if e <= 2.5 * m && zeros > 0 {
            (m * (m / zeros as f64).ln()).round() as u64
        } else {
            e.round() as u64
        }
    }
}

/// Counters for one run (all inputs together).
#[derive(Clone, Default)]
pub struct Stats {
    /// Packets read.
    pub read: u64,
    /// Packets written.
    pub written: u64,
    /// Packets with at least one address changed.
    pub rewritten: u64,
    /// Non-packet blocks copied.
    pub blocks: u64,
    /// Packets dropped, by reason.
    pub dropped: BTreeMap<&'static str, u64>,
    /// Unparsable packets written unchanged (`--unparsed pass`), by reason.
    pub passed: BTreeMap<&'static str, u64>,
    /// Non-packet blocks removed (e.g. name resolution), by kind.
    pub blocks_removed: BTreeMap<&'static str, u64>,
    /// pcapng options removed (comments, names, filters, hashes), by name.
    pub options_removed: BTreeMap<&'static str, u64>,
    /// Distinct input addresses seen in address fields.
    pub distinct: DistinctCounter,
    /// C-DNS: blocks and address-table entries handled.
    pub cdns_blocks: u64,
    /// C-DNS: address-table entries rewritten.
    pub cdns_addresses: u64,
    /// Inputs opened (a run none of whose inputs opened prints no summary).
    pub inputs: u64,
    /// Packet inputs (pcap, pcapng): a run of C-DNS files only has no
    /// packet counters to show.
    pub packet_inputs: u64,
    /// DNS-over-TCP flows evicted (idle, or for room) before their end.
    pub tcp_flows_evicted: u64,
    /// Reverse names found and washed (packets, fragments, C-DNS).
    pub names: crate::revname::NameStats,
}

impl Stats {
    /// Count a dropped packet.
    pub fn dropped(&mut self, r: &'static str) {
        *self.dropped.entry(r).or_default() += 1;
    }
    /// Count a passed unparsable packet.
    pub fn passed(&mut self, r: &'static str) {
        *self.passed.entry(r).or_default() += 1;
    }
    /// Count a removed block.
    pub fn blocks_dropped(&mut self, r: &'static str) {
        *self.blocks_removed.entry(r).or_default() += 1;
    }

    /// Count removed pcapng options.
    pub fn add_options_removed(&mut self, o: &BTreeMap<&'static str, u64>) {
        for (k, v) in o {
            *self.options_removed.entry(k).or_default() += v;
        }
    }

    /// Add another worker's counters.
    pub fn merge(&mut self, o: &Stats) {
        self.read += o.read;
        self.written += o.written;
        self.rewritten += o.rewritten;
        self.blocks += o.blocks;
        for (k, v) in &o.dropped {
            *self.dropped.entry(k).or_default() += v;
        }
        for (k, v) in &o.passed {
            *self.passed.entry(k).or_default() += v;
        }
        for (k, v) in &o.blocks_removed {
            *self.blocks_removed.entry(k).or_default() += v;
        }
        self.add_options_removed(&o.options_removed);
        self.distinct.merge(&o.distinct);
        self.cdns_blocks += o.cdns_blocks;
        self.cdns_addresses += o.cdns_addresses;
        self.inputs += o.inputs;
        self.packet_inputs += o.packet_inputs;
        self.tcp_flows_evicted += o.tcp_flows_evicted;
        self.names.add(&o.names);
    }

    /// Total packets dropped.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// The stderr summary.
    pub fn summary(&self) -> String {
        let packets = self.packet_inputs > 0 || self.read > 0 || self.cdns_blocks == 0;
        let mut s = if packets {
            format!(
                "ipwash: packets read {}, written {}, rewritten {}, dropped {}",
                self.read,
                self.written,
                self.rewritten,
                self.dropped_total()
            )
        } else {
            format!(
                "ipwash: C-DNS blocks {}, address entries rewritten {}",
                self.cdns_blocks, self.cdns_addresses
            )
        };
        if !self.dropped.is_empty() {
            let parts: Vec<String> = self
                .dropped
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            s.push_str(&format!(" ({})", parts.join(", ")));
        }
        if !self.passed.is_empty() {
            let parts: Vec<String> = self
                .passed
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            s.push_str(&format!(
                "; passed UNWASHED {} ({})",
                self.passed.values().sum::<u64>(),
                parts.join(", ")
            ));
        }
        if packets {
            s.push_str(&format!(
                "; distinct addresses ~{}",
                self.distinct.estimate()
            ));
        }
        if packets && self.cdns_blocks > 0 {
            s.push_str(&format!(
                "; C-DNS blocks {}, address entries rewritten {}",
                self.cdns_blocks, self.cdns_addresses
            ));
        }
        if self.tcp_flows_evicted > 0 {
            s.push_str(&format!("; TCP flows evicted {}", self.tcp_flows_evicted));
        }
        if self.names.found > 0 {
            s.push_str(&format!(
                "; reverse names {}, washed {}",
                self.names.found, self.names.washed
            ));
        }
        if !self.blocks_removed.is_empty() {
            let parts: Vec<String> = self
                .blocks_removed
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            s.push_str(&format!("; blocks removed ({})", parts.join(", ")));
        }
        if !self.options_removed.is_empty() {
            let parts: Vec<String> = self
                .options_removed
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            s.push_str(&format!("; options removed ({})", parts.join(", ")));
        }
        s.push('\n');
        s
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(&self.json_value()).unwrap_or_default();
        s.push('\n');
        s
    }

    /// The JSON form as a value.
    pub fn json_value(&self) -> serde_json::Value {
        serde_json::json!({
            "packets_read": self.read,
            "packets_written": self.written,
            "packets_rewritten": self.rewritten,
            "packets_dropped": self.dropped_total(),
            "dropped_by_reason": self.dropped,
            "passed_unwashed_by_reason": self.passed,
            "blocks_copied": self.blocks,
            "blocks_removed": self.blocks_removed,
            "options_removed": self.options_removed,
            "distinct_addresses_estimate": self.distinct.estimate(),
            "cdns_blocks": self.cdns_blocks,
            "cdns_addresses_rewritten": self.cdns_addresses,
            "tcp_flows_evicted": self.tcp_flows_evicted,
            "reverse_names_found": self.names.found,
            "reverse_names_washed": self.names.washed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_estimate_is_close() {
        let mut d = DistinctCounter::default();
        for i in 0..50_000u32 {
            d.insert_v4(i);
            d.insert_v4(i);
        }
        let e = d.estimate() as f64;
        assert!((e - 50_000.0).abs() / 50_000.0 < 0.05, "{e}");
        let mut small = DistinctCounter::default();
        for i in 0..10u32 {
            small.insert_v4(i);
        }
        assert_eq!(small.estimate(), 10);
    }
}
