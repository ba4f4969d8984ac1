#!/bin/sh
# run.sh: `make bench`: basin's benchmarks, then the PyTorch peer (shared/peers/bench_ref.sh)
# on the same shapes in the same run, then a markdown summary with the ratios.
#   tests/bench/run.sh BENCH_BINARY [conv|train|logmel|all]
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset by the Makefile for this command only.
set -u
bench=$1
what=${2:-all}
peer=${PEER:-../shared/peers/bench_ref.sh}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

"$bench" "$what" | tee "$log"

have_peer=0
if [ -x "$peer" ] && /usr/bin/python3 -c 'import torch, torchaudio' 2>/dev/null; then have_peer=1; fi

# value KEY LINE: the number after "KEY " (RESULT lines) or "KEY": (peer JSON)
num() { printf ' %s\n' "$2" | sed -n "s/.*[ {]\"\\{0,1\\}$1\"\\{0,1\\}:\\{0,1\\} \\([0-9.e+-]*\\).*/\\1/p" | head -n1; }
fmt() { awk -v a="$1" 'BEGIN { if (a + 0 == a && a != "") printf "%.3g", a; else printf "%s", a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else printf "n/a" }'; }

echo
echo "## Summary ($(grep '^RESULT machine' "$log" | sed 's/^RESULT machine //'))"
if [ "$what" = all ] || [ "$what" = conv ]; then
    echo
    echo "| conv layer, GFLOP/s (batch 16 for width 32, 4 for width 128) | threads | sgemm, same GEMM shape | forward | forward / sgemm | backward data | backward weight | max error vs naive |"
    echo "|---|---|---|---|---|---|---|---|"
    grep '^RESULT conv' "$log" | while read -r _ _ w t rest; do
        label=$(printf '%s' "$rest" | sed 's/ sgemm .*//')
        sg=$(num sgemm "$rest"); fw=$(num fwd "$rest"); bd=$(num bwd_data "$rest"); bw=$(num bwd_weight "$rest"); err=$(num naive_err "$rest")
        echo "| $w $label | ${t#t} | $(fmt "$sg") | $(fmt "$fw") | $(awk -v a="$fw" -v b="$sg" 'BEGIN{printf "%.0f %%", 100*a/b}') | $(fmt "$bd") | $(fmt "$bw") | $err |"
    done
fi
if [ "$what" = all ] || [ "$what" = train ]; then
    echo
    echo "| training step, batch 16 (forward, cross-entropy, backward, Adam) | threads | basin samples/s | PyTorch samples/s | basin / PyTorch |"
    echo "|---|---|---|---|---|"
    for t in 1 2; do
        for m in cpresnet-w32-rho5 sepnet; do
            line=$(grep "^RESULT train $m threads $t " "$log")
            b=$(num samples_per_s "$line")
            p=n/a
            if [ $have_peer = 1 ]; then
                case $m in
                cpresnet*) args="--model cpresnet --width 32 --rho 5" ;;
                *) args="--model sepnet" ;;
                esac
                # shellcheck disable=SC2086
                p=$(num samples_per_s "$("$peer" train $args --batch 16 --threads $t 2>/dev/null)")
            fi
            echo "| $m | $t | $(fmt "$b") | $(fmt "$p") | $(ratio "$b" "$p") |"
        done
    done
    echo
    echo "| inference (eval forward), batch 16 | threads | basin samples/s | PyTorch samples/s | basin / PyTorch |"
    echo "|---|---|---|---|---|"
    for t in 1 2; do
        line=$(grep "^RESULT train cpresnet-w32-rho5 threads $t " "$log")
        b=$(num infer_samples_per_s "$line")
        p=n/a
        [ $have_peer = 1 ] && p=$(num samples_per_s "$("$peer" forward --model cpresnet --width 32 --rho 5 --batch 16 --threads $t 2>/dev/null)")
        echo "| cpresnet-w32-rho5 | $t | $(fmt "$b") | $(fmt "$p") | $(ratio "$b" "$p") |"
    done
fi
if [ "$what" = all ] || [ "$what" = logmel ]; then
    echo
    echo "| log-mel, 10 s clip | basin ms/clip | bare FFT ms | basin / FFT | torchaudio ms/clip | torchaudio / basin |"
    echo "|---|---|---|---|---|---|"
    for preset in cpjku sp4asc; do
        line=$(grep "^RESULT logmel $preset " "$log")
        b=$(num clip_ms "$line"); f=$(num fft_ms "$line")
        p=n/a
        [ $have_peer = 1 ] && p=$(num ms_per_clip "$("$peer" logmel --preset $preset --batch 1 --threads 1 2>/dev/null)")
        echo "| $preset, 1 clip, 1 thread | $(fmt "$b") | $(fmt "$f") | $(ratio "$b" "$f") | $(fmt "$p") | $(ratio "$p" "$b") |"
        for t in 1 2; do
            line=$(grep "^RESULT logmel_batch $preset threads $t " "$log")
            b=$(num clip_ms "$line")
            p=n/a
            [ $have_peer = 1 ] && p=$(num ms_per_clip "$("$peer" logmel --preset $preset --batch 64 --threads $t 2>/dev/null)")
            echo "| $preset, batch of 64, $t thread(s) | $(fmt "$b") | | | $(fmt "$p") | $(ratio "$p" "$b") |"
        done
    done
fi
[ $have_peer = 1 ] || echo "(PyTorch peer unavailable: install python3-torch python3-torchaudio for the ratios)"
