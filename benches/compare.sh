#!/usr/bin/env bash
# Side-by-side comparison behind the README's performance table.
#
# Generates a 1,000,000-packet DNS capture from 50,000 Zipf-distributed
# clients (`ipwash synth`), then times with hyperfine, on the same file:
#   - ipwash wash --method cryptopan, 1 and 2 threads
#   - ipwash wash --method truncate
#   - dnswasher (Debian pdns-tools) in its default mode
#   - cat in > out (the I/O floor)
# then Crypto-PAn with 1 and 2 threads on a 1,000,000-packet capture where
# every query comes from a new random client (`synth --random-clients`),
# and measures yacryptopan (PyPI) on random IPv4/IPv6 addresses; last,
# `ipwash text` beside anonip on a query log (benches/compare-text.sh).
#
# The work directory defaults to one under /dev/shm (tmpfs) when there is
# one, so that disk writeback of the 100 MB outputs, which lands on
# whichever command happens to be writing, does not decide the figures.
# Every command reads and writes in the same directory.
# Peak memory of `wash` with a stateless technique at 1 M and 4 M packets
# comes from GNU time's maximum resident set size.
#
# Needs: a release build (cargo build --release), hyperfine, dnswasher,
# python3 with yacryptopan, /usr/bin/time. Usage: benches/compare.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/ipwash
if [ -n "${1:-}" ]; then
  work=$1
elif [ -d /dev/shm ] && [ -w /dev/shm ]; then
  work=$(mktemp -d /dev/shm/ipwash-compare.XXXXXX)
  # About 700 MB of captures and outputs: gone when the script ends.
  trap 'rm -rf "$work"' EXIT
else
  work=$(mktemp -d)
fi
echo "work directory: $work ($(df -T "$work" | awk 'NR==2 {print $2}'))"
key="$work/k"
echo 1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202 > "$key"
cap="$work/dns-1m.pcap"
[ -f "$cap" ] || "$bin" synth -o "$cap" --packets 1000000 --clients 50000
ls -l "$cap"

hyperfine --warmup 1 --runs 10 --export-markdown "$work/wash.md" \
  "cat $cap > $work/cat.out" \
  "$bin wash $cap -o $work/t.out --method truncate -q" \
  "$bin wash $cap -o $work/c1.out --method cryptopan --key-file $key --threads 1 -q" \
  "$bin wash $cap -o $work/c2.out --method cryptopan --key-file $key --threads 2 -q" \
  "dnswasher $cap $work/dw.out"
cat "$work/wash.md"

rnd="$work/random-1m.pcap"
[ -f "$rnd" ] || "$bin" synth -o "$rnd" --packets 1000000 --random-clients
hyperfine --warmup 1 --runs 10 --export-markdown "$work/scaling.md" \
  "$bin wash $rnd -o $work/r1.out --method cryptopan --key-file $key --threads 1 -q" \
  "$bin wash $rnd -o $work/r2.out --method cryptopan --key-file $key --threads 2 -q"
cat "$work/scaling.md"
cmp "$work/r1.out" "$work/r2.out" && echo "1 and 2 threads: byte-identical output"

echo "peak RSS (KiB), cryptopan, 1M and 4M packets:"
cap4="$work/dns-4m.pcap"
[ -f "$cap4" ] || "$bin" synth -o "$cap4" --packets 4000000 --clients 50000
for c in "$cap" "$cap4"; do
  /usr/bin/time -f "%M KiB  $(basename "$c")" "$bin" wash "$c" -o "$work/m.out" --method cryptopan --key-file "$key" -q
done

python3 - <<'PY'
import random, time
from yacryptopan import CryptoPAn
cp = CryptoPAn(bytes.fromhex("1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202"))
assert cp.anonymize("24.5.0.80") == "100.9.15.210"
random.seed(1)
v4 = ["%d.%d.%d.%d" % tuple(random.randrange(256) for _ in range(4)) for _ in range(20000)]
v6 = [":".join("%x" % random.randrange(65536) for _ in range(8)) for _ in range(2000)]
for name, s in (("IPv4", v4), ("IPv6", v6)):
    t = time.perf_counter()
    for a in s:
        cp.anonymize(a)
    print("yacryptopan %s random: %.0f addresses/s" % (name, len(s) / (time.perf_counter() - t)))
PY

# Text logs: ipwash text beside anonip on a generated BIND query log.
benches/compare-text.sh "$work"
