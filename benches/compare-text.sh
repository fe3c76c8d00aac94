#!/usr/bin/env bash
# `ipwash text` beside anonip (PyPI) on one generated BIND query log of
# 1,000,000 lines from 100,000 Zipf-distributed clients (s = 1.1, one in
# ten IPv6), the format of BIND 9.18 with `print-time yes`.
#
# anonip's closest setting: --regex picking the client address (before
# `#port`) and the server address (in the closing parentheses), masking 8
# IPv4 bits and 80 IPv6 bits; ipwash: truncate keeping /24 and /48, which
# writes the same addresses. Crypto-PAn is timed as well. Times with
# hyperfine; lines/s = 1,000,000 / mean time.
#
# Needs: a release build, hyperfine, python3, anonip (pip install anonip).
# Usage: benches/compare-text.sh [WORKDIR]  (also run by benches/compare.sh);
# TEXT_RUNS sets the runs of each ipwash command (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/ipwash
work=${1:-$(mktemp -d)}
log="$work/querylog-1m.log"
if [ ! -f "$log" ]; then
python3 - "$log" <<'PY'
import random, sys, itertools
random.seed(7)
n, clients = 1_000_000, 100_000
w = list(itertools.accumulate(1.0 / r ** 1.1 for r in range(1, clients + 1)))
def addr(i):
    x = random.getrandbits(64)
    if x % 10 == 0:
        return "2001:db8:%x:%x::%x" % ((x >> 16) & 0xffff, (x >> 32) & 0xffff, ((x >> 48) & 0xffff) | 1)
    return "10.%d.%d.%d" % ((x >> 24) & 255, (x >> 16) & 255, (x >> 8) & 255)
addrs = [addr(i) for i in range(clients)]
types = ["A", "AAAA", "A", "HTTPS", "A", "MX", "TXT", "PTR"]
picks = random.choices(range(clients), cum_weights=w, k=n)
with open(sys.argv[1], "w") as f:
    for i, c in enumerate(picks):
        a = addrs[c]
        srv = "2001:db8::53" if ":" in a else "192.0.2.53"
        x = random.getrandbits(64)
        name = "host%d.zone%d.example" % (x % 5000, (x >> 20) % 300)
        s = i // 1000
        f.write("01-Dec-2026 %02d:%02d:%02d.%03d client @0x7f%010x %s#%d (%s): query: %s IN %s +E(0)K (%s)\n"
                % ((s // 3600) % 24, (s // 60) % 60, s % 60, i % 1000, x & 0xffffffffff, a,
                   1024 + (x >> 48) % 60000, name, name, types[(x >> 40) % 8], srv))
PY
fi
ls -l "$log"
key="$work/k"
echo 1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202 > "$key"
re='^\S+ \S+ client @\S+ ([0-9a-fA-F.:]+)#\d+ .*\(([0-9a-fA-F.:]+)\)$'
# Each command writes a new file, as a user's run does: its output from
# the run before is removed first (outside the timing), so no run pays for
# freeing the previous file's pages.
#
# The machine's own ceiling for two threads: two independent one-thread
# runs at once (no shared state at all). 2 x (one run alone) / (two at
# once) is how much this machine's second core gives; a two-thread run
# cannot scale past it.
prep=()
for o in cat t1 t2 c1 c2; do prep+=(--prepare "rm -f $work/$o.out"); done
prep+=(--prepare "rm -f $work/p1.out $work/p2.out")
hyperfine --warmup 2 --runs "${TEXT_RUNS:-10}" "${prep[@]}" --export-markdown "$work/text.md" \
  "cat $log > $work/cat.out" \
  "$bin text $log -o $work/t1.out --method truncate --threads 1 -q" \
  "$bin text $log -o $work/t2.out --method truncate --threads 2 -q" \
  "$bin text $log -o $work/c1.out --method cryptopan --key-file $key --threads 1 -q" \
  "$bin text $log -o $work/c2.out --method cryptopan --key-file $key --threads 2 -q" \
  "$bin text $log -o $work/p1.out --method truncate --threads 1 -q & $bin text $log -o $work/p2.out --method truncate --threads 1 -q; wait"
# anonip appends to --output: each run starts from no file.
hyperfine --runs 2 --prepare "rm -f $work/anonip.out" --export-markdown "$work/anonip.md" \
  "anonip --ipv4mask 8 --ipv6mask 80 --regex '$re' --input $log --output $work/anonip.out"
cat "$work/text.md" "$work/anonip.md"
cmp "$work/t1.out" "$work/t2.out" && cmp "$work/c1.out" "$work/c2.out" &&
  echo "1 and 2 threads: byte-identical output"
if cmp -s "$work/t1.out" "$work/anonip.out"; then
  echo "anonip and ipwash truncate: identical output"
else
  echo "anonip and ipwash truncate differ on $(cmp -l "$work/t1.out" "$work/anonip.out" 2>/dev/null | wc -l) bytes"
  diff <(head -3 "$work/t1.out") <(head -3 "$work/anonip.out") || true
fi

# Paired rounds (this machine's speed drifts by tens of percent within a
# minute, which moves whole hyperfine series): each round times one run
# of every command back to back, and the figures are medians over rounds
# of per-round ratios. anonip runs in every round too, on the first
# 100,000 lines (its cost per line does not change with the file's
# length; ten times its time stands for the 1 M lines). ROUNDS sets the
# rounds (default 30).
head -n 100000 "$log" >"$work/querylog-100k.log"
ms() { local s e; rm -f "$work"/r*.out; s=$(date +%s%N); eval "$1" >/dev/null 2>&1; e=$(date +%s%N); echo $(((e - s) / 1000)); }
: >"$work/rounds.txt"
for ((r = 0; r < ${ROUNDS:-30}; r++)); do
  a=$(ms "$bin text $log -o $work/r1.out --method truncate --threads 1 -q")
  b=$(ms "$bin text $log -o $work/r2.out --method truncate --threads 2 -q")
  c=$(ms "$bin text $log -o $work/r3.out --method truncate --threads 1 -q & $bin text $log -o $work/r4.out --method truncate --threads 1 -q; wait")
  d=$(ms "$bin text $log -o $work/r5.out --method cryptopan --key-file $key --threads 1 -q")
  e=$(ms "$bin text $log -o $work/r6.out --method cryptopan --key-file $key --threads 2 -q")
  f=$(ms "anonip --ipv4mask 8 --ipv6mask 80 --regex '$re' --input $work/querylog-100k.log --output $work/r7.out")
  echo "$a $b $c $d $e $f" >>"$work/rounds.txt"
done
python3 - "$work/rounds.txt" <<'PY'
import statistics as st, sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
col = lambda i: [r[i] / 1000 for r in rows]
med = lambda xs: st.median(xs)
t1, t2, pair, c1, c2, an = (med(col(i)) for i in range(6))
print(f"paired rounds: {len(rows)}")
print(f"anonip 100k lines median {an:.0f} ms: {1e5 / an * 1000:,.0f} lines/s")
print(f"truncate 1 thread median {t1:.1f} ms: {1e6 / t1 * 1000:,.0f} lines/s; "
      f"against anonip: median of round ratios {med([10 * r[5] / r[0] for r in rows]):.0f}x")
print(f"truncate 2 threads median {t2:.1f} ms; 2 threads / 1 thread: median of round ratios {med([r[0] / r[1] for r in rows]):.2f}x")
print(f"machine ceiling (two 1-thread runs at once): median of 2 x alone / pair {med([2 * r[0] / r[2] for r in rows]):.2f}x")
print(f"cryptopan 1 thread median {c1:.1f} ms ({med([10 * r[5] / r[3] for r in rows]):.0f}x anonip); "
      f"2 threads / 1: {med([r[3] / r[4] for r in rows]):.2f}x")
PY
