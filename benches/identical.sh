#!/usr/bin/env bash
# Byte-identity check between two ipwash binaries: benches/identical.sh OLD NEW
#
# Runs `wash` with both binaries over every method x option set x input and
# compares, run by run, the standard output, the standard error, the exit
# code and every file the run wrote (output, --state table, --dropped file,
# --stats-json, whose per-file "seconds" are the only field left out).
# Prints the number of runs and of mismatches (and the first lines of each
# mismatch); exits 1 when any run differs.
#
# Inputs: the sample (testdata/), the shared corpus ($IPWASH_CORPUS, default
# ../shared/testdata: pcap, pcapng, C-DNS, compressed ones), and captures
# generated with `OLD synth` (pcap, then pcapng and nanosecond pcap made
# with editcap when it is installed, and gzip/zstd/bzip2/xz wrappings).
# Core inputs (every format and framing variant) get every option set, the
# other small inputs three sets each in rotation, and the few large corpus
# files (several MB once decompressed) a reduced set, so that the whole
# check stays within a few minutes. The work directory is on tmpfs (/dev/shm) when there is one.
#
# Env: IDENTICAL_FILTER=REGEX keeps only the runs whose label matches.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  echo "usage: benches/identical.sh OLD-BINARY NEW-BINARY" >&2
  exit 2
fi
old=$(realpath "$1")
new=$(realpath "$2")
repo=$(pwd)
corpus=${IPWASH_CORPUS:-$repo/../shared/testdata}
filter=${IDENTICAL_FILTER:-}
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  work=$(mktemp -d /dev/shm/ipwash-identical.XXXXXX)
else
  work=$(mktemp -d)
fi
trap 'rm -rf "$work"' EXIT

# Keys: the sample's 32-byte key, its first half as a 16-byte key, and the
# cryptopANT key file of the vectors (all published, none secret).
k32=$repo/testdata/sample.key
k16=$work/k16
head -c 32 "$k32" > "$k16"
echo >> "$k16"
kant=$repo/testdata/vectors/cryptopant/keyfile.aes

# --- inputs ---------------------------------------------------------------
small=("$repo/testdata/sample-dns.pcap")
large=()
if [ -d "$corpus/pcap" ]; then
  for f in "$corpus"/pcap/*.pcap* "$corpus"/pcap/derived/*.pcap* \
           "$corpus"/cdns/*/*.cdns* "$corpus"/cdns/compactor-testdata/*.pcap.xz; do
    [ -f "$f" ] || continue
    case $f in
      *nsd-live*|*knot-live*|*wireshark_samples-test*|*/dns.pcap.xz|*/gold.pcap.xz|*cdns_test_file*)
        large+=("$f") ;;
      *) small+=("$f") ;;
    esac
  done
else
  echo "note: no corpus at $corpus (set IPWASH_CORPUS); sample and generated captures only" >&2
fi
gen=$work/gen
mkdir -p "$gen"
"$old" synth -o "$gen/synth.pcap" --packets 3000 --clients 300 --seed 7 2>/dev/null
"$old" synth -o "$gen/random.pcap" --packets 2000 --random-clients --seed 9 2>/dev/null
small+=("$gen/synth.pcap" "$gen/random.pcap")
if command -v editcap >/dev/null; then
  editcap -F pcapng "$gen/synth.pcap" "$gen/synth.pcapng" && small+=("$gen/synth.pcapng")
  editcap -F nsecpcap "$gen/random.pcap" "$gen/random-ns.pcap" && small+=("$gen/random-ns.pcap")
  # A cut capture: the last record is incomplete (exit 1, the rest written).
  head -c 50000 "$gen/synth.pcapng" > "$gen/cut.pcapng" && small+=("$gen/cut.pcapng")
fi
head -c 40000 "$gen/synth.pcap" > "$gen/cut.pcap" && small+=("$gen/cut.pcap")
command -v gzip >/dev/null && gzip -6 -c "$gen/synth.pcap" > "$gen/synth.pcap.gz" && small+=("$gen/synth.pcap.gz")
command -v zstd >/dev/null && zstd -q -3 -c "$gen/random.pcap" > "$gen/random.pcap.zst" && small+=("$gen/random.pcap.zst")
command -v bzip2 >/dev/null && bzip2 -c "$gen/synth.pcap" > "$gen/synth.pcap.bz2" && small+=("$gen/synth.pcap.bz2")
command -v xz >/dev/null && [ -f "$gen/synth.pcapng" ] && xz -c "$gen/synth.pcapng" > "$gen/synth.pcapng.xz" && small+=("$gen/synth.pcapng.xz")

# --- methods and option sets -----------------------------------------------
methods=(
  "truncate"
  "truncate --ipv4-prefix 16 --ipv6-prefix 40"
  "enumerate"
  "enumerate --numbering dnswasher"
  "prefix-map --key-file $k32"
  "cryptopan --key-file $k32"
  "tsa --key-file $k32"
  "ipcipher --key-file $k16"
  "ipcrypt-pfx --key-file $k32"
  "cryptopant --key-file $kant"
)
# Methods that wash no capture (usage error, exit 2): one option set each.
refused=(
  "ipcrypt-deterministic --key-file $k16"
  "ipcrypt-nd --key-file $k16"
  "ipcrypt-ndx --key-file $k32"
)
# Option sets. OUT is replaced by the output name; STDIN makes the input
# come on standard input (the live, sequential path).
opts_all=(
  "--threads 1 -o -"
  "--threads 2 -o -"
  "--threads 2 --mac keep -o -"
  "--threads 1 --keep-metadata --keep-comments -o -"
  "--threads 2 --unparsed pass --scope clients --keep 192.0.2.0/24 --keep 2001:db8::/32 -o -"
  "--threads 1 --pass4 8 --pass6 16 -o -"
  "--threads 2 --mapped native --cache-size 0 -o -"
  "--threads 1 --state state.csv -o OUT"
  "--threads 2 --dropped dropped.pcapng --stats-json stats.json -o OUT"
  "--threads 2 --reverse -o -"
  "--threads 2 -o OUT.zst"
  "--threads 1 -o - STDIN"
)
opts_large=(
  "--threads 2 -o -"
  "--threads 1 --dropped dropped.pcapng --stats-json stats.json -o OUT"
)

runs=0
mismatches=0
report=$work/mismatches.txt
: > "$report"

ext_of() {
  case $1 in
    *.cdns*|*.cbor*) echo cdns ;;
    *.pcapng*) echo pcapng ;;
    *) echo pcap ;;
  esac
}

# run_one BIN DIR INPUT METHOD OPTS
run_one() {
  local bin=$1 dir=$2 input=$3 method=$4 opts=$5
  mkdir -p "$dir"
  local ext
  ext=$(ext_of "$input")
  local o=${opts//OUT/out.$ext}
  local stdin=/dev/null
  local inarg=$input
  if [[ $o == *STDIN* ]]; then
    o=${o//STDIN/}
    stdin=$input
    inarg=-
  fi
  # shellcheck disable=SC2086
  (cd "$dir" && "$bin" wash "$inarg" --method $method $o < "$stdin" > stdout 2> stderr; echo $? > rc)
  # The only field that may differ between two runs: elapsed time.
  if [ -f "$dir/stats.json" ]; then
    sed -i -E 's/"seconds": [0-9.e+-]+/"seconds": 0/' "$dir/stats.json"
  fi
}

compare() {
  local label=$1 input=$2 method=$3 opts=$4
  if [ -n "$filter" ] && ! [[ $label =~ $filter ]]; then
    return
  fi
  local d=$work/run
  rm -rf "$d"
  run_one "$old" "$d/old" "$input" "$method" "$opts"
  run_one "$new" "$d/new" "$input" "$method" "$opts"
  runs=$((runs + 1))
  if ! diff -r -q "$d/old" "$d/new" > "$d/diff" 2>&1; then
    mismatches=$((mismatches + 1))
    {
      echo "MISMATCH: $label"
      head -5 "$d/diff"
      for f in stderr rc; do
        if ! cmp -s "$d/old/$f" "$d/new/$f"; then
          echo "  old $f: $(head -c 300 "$d/old/$f")"
          echo "  new $f: $(head -c 300 "$d/new/$f")"
        fi
      done
    } >> "$report"
  fi
}

short() { basename "$1"; }

# Core inputs (every format and framing variant) get every option set;
# the other small inputs three option sets each, in rotation, so that
# every set meets many inputs; the large ones the reduced set.
is_core() {
  case $(basename "$1") in
    sample-dns.pcap|synth.pcap|random.pcap|synth.pcapng|random-ns.pcap|cut.pcap|cut.pcapng) return 0 ;;
    pcapng-testgen__test202-le.pcapng|pcapng-testgen__test100-be.pcapng) return 0 ;;
    zeek__pcapng-multi-interface.pcapng|pcap-parser__modified-format.pcap) return 0 ;;
    oarc-packetq__sample-bigendian.pcap|oarc-dnscap__frags.pcap|zeek__dns-edns-ecs.pcap) return 0 ;;
    testcontent-full.cdns) return 0 ;;
  esac
  return 1
}
i=0
for input in "${small[@]}"; do
  if is_core "$input"; then
    sets=("${opts_all[@]}")
    for m in "${refused[@]}"; do
      compare "$(short "$input") | $m | -o -" "$input" "$m" "-o -"
    done
  else
    n=${#opts_all[@]}
    sets=("${opts_all[$((i % n))]}" "${opts_all[$(((i + 4) % n))]}" "${opts_all[$(((i + 8) % n))]}")
    i=$((i + 1))
  fi
  for m in "${methods[@]}"; do
    for o in "${sets[@]}"; do
      compare "$(short "$input") | $m | $o" "$input" "$m" "$o"
    done
  done
done
for input in "${large[@]}"; do
  for m in "${methods[@]}"; do
    for o in "${opts_large[@]}"; do
      compare "$(short "$input") | $m | $o" "$input" "$m" "$o"
    done
  done
done

cat "$report"
echo "inputs: ${#small[@]} small, ${#large[@]} large"
echo "runs: $runs, mismatches: $mismatches"
[ "$mismatches" -eq 0 ]
