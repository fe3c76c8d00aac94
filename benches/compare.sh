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
# With the section `archives` (benches/compare.sh [WORKDIR|""] archives) it
# runs only the archive comparisons, with 2 threads on every side: the 1 M
# capture compressed by each tool at its default level, then washed by
# ipwash to the same wrapping, against the tools' own pipelines
#   gzip -dc | pigz -p2 -6,  xz -dc | xz -T2 -6,  zstd -dc | zstd -T2 -3
# and a batch of 200 files of 1,000 packets against one file of 200,000.
# ARCHIVE_PARTS="gz zst xz batch" picks parts; XZ_PACKETS=N makes the xz
# part use an N-packet capture instead (xz -6 is slow on a busy machine).
#
# Needs: a release build (cargo build --release), hyperfine, dnswasher,
# python3 with yacryptopan, /usr/bin/time; for `archives` gzip, pigz, xz,
# zstd. Usage: benches/compare.sh [WORKDIR] [archives]
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

if [ "${2:-}" = archives ]; then
  # ARCHIVE_PARTS picks parts (default all); XZ_PACKETS sizes the xz
  # comparison's capture (default the 1 M one; xz -6 is slow).
  parts=" ${ARCHIVE_PARTS:-gz zst xz batch} "
  ck="--method cryptopan --key-file $key --threads 2 -q"
  if [[ $parts == *" gz "* ]]; then
    gzip -6 -c "$cap" > "$work/in.pcap.gz"
    hyperfine --runs 3 --export-markdown "$work/gz.md" \
      "$bin wash $work/in.pcap.gz -o $work/out.pcap.gz $ck" \
      "gzip -dc $work/in.pcap.gz | pigz -p2 -6 > $work/tool.pcap.gz"
    cat "$work/gz.md"
    ls -l "$work"/*.pcap.gz
  fi
  if [[ $parts == *" zst "* ]]; then
    zstd -q -3 -c "$cap" > "$work/in.pcap.zst"
    hyperfine --runs 3 --export-markdown "$work/zst.md" \
      "$bin wash $work/in.pcap.zst -o $work/out.pcap.zst $ck" \
      "zstd -q -dc $work/in.pcap.zst | zstd -q -T2 -3 > $work/tool.pcap.zst"
    cat "$work/zst.md"
    ls -l "$work"/*.pcap.zst
  fi
  if [[ $parts == *" xz "* ]]; then
    xcap=$cap
    if [ -n "${XZ_PACKETS:-}" ]; then
      xcap="$work/xz-src.pcap"
      "$bin" synth -o "$xcap" --packets "$XZ_PACKETS" --clients 50000
    fi
    xz -6 -T2 -c "$xcap" > "$work/in.pcap.xz"
    hyperfine --runs 2 --export-markdown "$work/xz.md" \
      "$bin wash $work/in.pcap.xz -o $work/out.pcap.xz $ck" \
      "xz -dc $work/in.pcap.xz | xz -T2 -6 > $work/tool.pcap.xz"
    cat "$work/xz.md"
    ls -l "$xcap" "$work"/*.pcap.xz
  fi
  if [[ $parts == *" batch "* ]]; then
    # 200 files of 1,000 packets against one file of 200,000 packets.
    mkdir -p "$work/batch"
    for i in $(seq 1 200); do
      "$bin" synth -o "$work/batch/f$(printf %03d "$i").pcap" --packets 1000 --seed "$i"
    done
    "$bin" synth -o "$work/one.pcap" --packets 200000
    du -sb "$work/batch" "$work/one.pcap"
    hyperfine --warmup 1 --runs "${BATCH_RUNS:-10}" --export-markdown "$work/batch.md" \
      --prepare "rm -rf $work/batch-out" \
      "$bin wash $work/batch -o $work/batch-out $ck" \
      "$bin wash $work/one.pcap -o $work/one.out $ck"
    cat "$work/batch.md"
  fi
  exit 0
fi

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
