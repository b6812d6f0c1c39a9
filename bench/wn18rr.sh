#!/bin/bash
# bench/wn18rr.sh - the best WN18RR run of each embedding model (README, Embeddings), one after
# another, each resumable from its checkpoint.
#
#   bench/wn18rr.sh OUTDIR [transe|distmult|complex|rotate ...]     (default: all four)
#
# Each model trains on one thread, its checkpoint in OUTDIR/MODEL.ckpt and its log appended to
# OUTDIR/MODEL.log; after an interruption the same command goes on from the last checkpoint
# (bit for bit on one thread). A run that has ended trains at most to its last validation
# check again and prints its test figures. Training time measured here: TransE 0.7 h,
# DistMult 7.7 h (325 epochs), ComplEx 3.6 h, RotatE 0.4 h, plus validation.
#
# Environment: BENCH_EMBED (default ./build/bench/bench_embed); EXTRA, keys appended to every
# command (the last of a key wins; EXTRA="epochs=1 dim=16" is a smoke test); OPENBLAS_CORETYPE
# is set to SkylakeX when the CPU has AVX-512 and it is unset or Haswell (the AVX-512 kernels
# run sgemm about twice as fast there; see README, Numerical core).
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 OUTDIR [transe|distmult|complex|rotate ...]" >&2
    exit 2
fi
out=$1
shift
[ $# -gt 0 ] || set -- transe distmult complex rotate
bench=${BENCH_EMBED:-./build/bench/bench_embed}
[ -x "$bench" ] || { echo "$0: no $bench (build first, or set BENCH_EMBED)" >&2; exit 2; }
mkdir -p "$out"

if grep -qw avx512f /proc/cpuinfo 2>/dev/null && [ "${OPENBLAS_CORETYPE:-Haswell}" = Haswell ]; then
    OPENBLAS_CORETYPE=SkylakeX
    export OPENBLAS_CORETYPE
fi
OPENBLAS_NUM_THREADS=1
export OPENBLAS_NUM_THREADS

settings() {
    case $1 in
    transe) echo "transe-l1 36000 loss=softplus dim=200 neg=64 gamma=6 adv=0.5 opt=adam lr=0.0005
                 normalize=0 init=0.04 bern=1 eval=5 patience=2 drop=0.1 drops=2 epochs=400 batch=512" ;;
    distmult) echo "distmult 72000 loss=kvsall dim=512 opt=adagrad lr=0.3313 batch=1024 reg=none init=1
                 init_lo=-0.7226 edrop=0.3668 rdrop=0.5 recip=1 ls=0.074 eval=5 patience=7 drop=0.95
                 drops=3 epochs=400" ;;
    complex) echo "complex 72000 loss=1vsall dim=64 opt=adagrad lr=0.5256 batch=512 reg=none init=1
                 init_lo=-0.2815 decay=4.523e-6 rdecay=4.19e-10 edrop=0.3593 rdrop=0.3112 eval=5
                 patience=5 drop=0.95 drops=3 epochs=400" ;;
    rotate) echo "rotate 36000 dim=500 neg=64 gamma=6 adv=0.5 opt=adam lr=0.0005 eval=5 patience=2
                 drop=0.1 drops=2 batch=512 epochs=400 subsample=1" ;;
    *) return 1 ;;
    esac
}

for m in "$@"; do
    s=$(settings "$m") || { echo "$0: unknown model '$m' (transe, distmult, complex, rotate)" >&2; exit 2; }
    ckpt=$out/$m.ckpt
    resume=0
    [ -f "$ckpt" ] && resume=1
    echo "== $m (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto}, resume=$resume)" | tee -a "$out/$m.log"
    # shellcheck disable=SC2086   # the settings are words on purpose
    "$bench" quality $s threads=1 ckpt="$ckpt" resume=$resume ${EXTRA:-} | tee -a "$out/$m.log"
done
