#!/bin/sh
# run.sh: `make bench`: basin's benchmarks, then the PyTorch peer (shared/peers/bench_ref.sh)
# on the same shapes in the same run, then a markdown summary with the ratios.
#   tests/bench/run.sh BENCH_BINARY [conv|dwpair|train|infer|predict|avx2|logmel|listen|prune|landscape|workbench|all]
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset by the Makefile for this command only.
#
# Every training and inference case runs in a process of its own, basin's and PyTorch's
# alike, so each reports its own peak resident memory (getrusage ru_maxrss). The avx2 cases
# time what a CPU without AVX-512 runs: basin without its AVX-512 kernels and OpenBLAS on
# its Haswell kernels, PyTorch with oneDNN limited to AVX2 (DNNL_MAX_CPU_ISA).
set -u
bench=$1
what=${2:-all}
peer=${PEER:-../shared/peers/bench_ref.sh}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

have_peer=0
if [ -x "$peer" ] && /usr/bin/python3 -c 'import torch, torchaudio' 2>/dev/null; then have_peer=1; fi

want() { [ "$what" = all ] || [ "$what" = "$1" ]; }

# value KEY LINE: the number after "KEY " (RESULT lines) or "KEY": (peer JSON)
num() { printf ' %s\n' "$2" | sed -n "s/.*[ {]\"\\{0,1\\}$1\"\\{0,1\\}:\\{0,1\\} \\([0-9.e+-]*\\).*/\\1/p" | head -n1; }
fmt() { awk -v a="$1" 'BEGIN { if (a + 0 == a && a != "") printf "%.3g", a; else printf "%s", a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else printf "n/a" }'; }

peer_args() { # model -> bench_ref.py model options
    case $1 in
    cpresnet) echo "--model cpresnet --width 32 --rho 5" ;;
    *) echo "--model sepnet" ;;
    esac
}

# run_case KIND MODEL BATCH THREADS [avx2]: basin's line and the peer's JSON into the log
run_case() {
    kind=$1 model=$2 batch=$3 threads=$4 isa=${5:-}
    if [ "$isa" = avx2 ]; then
        OPENBLAS_CORETYPE=Haswell "$bench" "$kind" "$model" "$batch" "$threads" avx2 | tee -a "$log"
    else
        "$bench" "$kind" "$model" "$batch" "$threads" | tee -a "$log"
    fi
    [ $have_peer = 1 ] || return 0
    reps="--reps 7 --warmup 2"
    [ "$model" = sepnet ] && [ "$kind" = train ] && reps="--reps 3 --warmup 1" # ~13 s a step
    case $kind in
    train) pkind=train ;;
    *) if [ "$batch" = 1 ]; then pkind=latency; else pkind=forward; fi ;;
    esac
    # shellcheck disable=SC2046,SC2086
    if [ "$isa" = avx2 ]; then
        out=$(DNNL_MAX_CPU_ISA=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 "$peer" $pkind $(peer_args "$model") --batch "$batch" --threads "$threads" $reps 2>/dev/null)
    else
        out=$("$peer" $pkind $(peer_args "$model") --batch "$batch" --threads "$threads" $reps 2>/dev/null)
    fi
    echo "PEER $kind $model batch $batch threads $threads isa ${isa:-best} $out" | tee -a "$log"
}

"$bench" machine | tee -a "$log"
for w in conv dwpair logmel listen prune; do want $w && "$bench" $w | grep -v '^RESULT machine\|^basin bench' | tee -a "$log"; done
if want train; then
    for model in cpresnet sepnet; do
        for batch in 16 32; do
            for threads in 1 2; do
                run_case train $model $batch $threads
                "$bench" loop $model $batch $threads | tee -a "$log"
            done
        done
    done
fi
if want avx2; then
    for threads in 1 2; do run_case train cpresnet 16 $threads avx2; done
    run_case train sepnet 16 2 avx2
fi
if want predict; then
    for model in cpresnet sepnet; do
        for threads in 1 2; do
            "$bench" predict $model $threads | tee -a "$log"
            [ $have_peer = 1 ] || continue
            out=$(GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736:glibc.malloc.top_pad=268435456 \
                OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads REF_DIR="$(dirname "$peer")" \
                /usr/bin/python3 "$(dirname "$0")/predict_ref.py" --model $model --threads $threads 2>/dev/null)
            echo "PEER predict $model batch 1 threads $threads isa best $out" | tee -a "$log"
        done
    done
fi
if want infer; then
    for model in cpresnet sepnet; do
        for batch in 1 16; do
            for threads in 1 2; do run_case infer $model $batch $threads; done
        done
    done
fi

echo
echo "## Summary ($(grep '^RESULT machine' "$log" | head -n1 | sed 's/^RESULT machine //'))"
if want conv; then
    echo
    echo "| conv layer, GFLOP/s (batch 16 for width 32, 4 for width 128) | threads | sgemm, same GEMM shape | forward | forward / sgemm | backward data | backward weight | forward, GEMM | forward, AVX2 direct | kernels chosen (fwd/data/weight) | max error vs naive |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    grep '^RESULT conv' "$log" | while read -r _ _ w t rest; do
        label=$(printf '%s' "$rest" | sed 's/ sgemm .*//')
        sg=$(num sgemm "$rest"); fw=$(num fwd "$rest"); bd=$(num bwd_data "$rest"); bw=$(num bwd_weight "$rest")
        gf=$(num gemm_fwd "$rest"); af=$(num avx2_fwd "$rest"); err=$(num naive_err "$rest")
        tuned=$(printf '%s' "$rest" | sed -n 's/.* tuned \([^ ]*\).*/\1/p')
        [ "$af" = 0.00 ] && af=-
        echo "| $w $label | ${t#t} | $(fmt "$sg") | $(fmt "$fw") | $(awk -v a="$fw" -v b="$sg" 'BEGIN{printf "%.0f %%", 100*a/b}') | $(fmt "$bd") | $(fmt "$bw") | $(fmt "$gf") | $(fmt "$af") | $tuned | $err |"
    done
fi
if want dwpair; then
    echo
    echo "| sepnet block 1 fused (one 256 x 431 sample) | threads | forward, train | forward, eval | backward | max error vs naive |"
    echo "|---|---|---|---|---|---|"
    grep '^RESULT dwpair' "$log" | while read -r _ _ t rest; do
        echo "| 1x1 (1 -> 64) + depthwise pair + BN + relu + 2x2 pool | ${t#t} | $(fmt "$(num fwd_train_ms "$rest")") ms | $(fmt "$(num fwd_eval_ms "$rest")") ms | $(fmt "$(num bwd_ms "$rest")") ms | $(num naive_err "$rest") |"
    done
fi
# table KIND ISA TITLE: one row per case that ran
table() {
    kind=$1 isa=$2
    echo
    if [ "$kind" = train ]; then
        echo "| $3 | batch | threads | basin samples/s | PyTorch samples/s | basin / PyTorch | basin peak RSS, MiB | PyTorch peak RSS, MiB | basin plan made in | basin real loop samples/s | loop / PyTorch step | loop peak RSS, MiB | trainer made in |"
        echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    else
        echo "| $3 | batch | threads | basin ms | PyTorch ms | PyTorch / basin | basin peak RSS, MiB | PyTorch peak RSS, MiB | basin plan made in |"
        echo "|---|---|---|---|---|---|---|---|---|"
    fi
    grep "^RESULT $kind .* isa $isa " "$log" | while read -r _ _ model _ batch _ threads _ _ rest; do
        b=$(num samples_per_s "$rest"); bms=$(num ms "$rest"); brss=$(num rss_mib "$rest"); bplan=$(num plan_s "$rest")
        pline=$(grep "^PEER $kind $model batch $batch threads $threads isa $isa " "$log")
        p=$(num samples_per_s "$pline"); pms=$(awk -v s="$(num median_s "$pline")" 'BEGIN { if (s > 0) printf "%.3f", s * 1e3 }')
        prss=$(num peak_rss_mib "$pline")
        label=$model
        [ "$model" = cpresnet ] && label="cpresnet width 32, ρ 5"
        [ "$model" = sepnet ] && label="sepnet (SP4ASC Cnn6_60k)"
        if [ "$kind" = train ]; then
            lline=""
            [ "$isa" = best ] && lline=$(grep "^RESULT loop $model batch $batch threads $threads " "$log")
            if [ -n "$lline" ]; then
                l=$(num samples_per_s "$lline")
                echo "| $label | $batch | $threads | $(fmt "$b") | $(fmt "$p") | $(ratio "$b" "$p") | $(fmt "$brss") | $(fmt "$prss") | $(fmt "$bplan") s | $(fmt "$l") | $(ratio "$l" "$p") | $(fmt "$(num rss_mib "$lline")") | $(fmt "$(num create_s "$lline")") s |"
            else
                echo "| $label | $batch | $threads | $(fmt "$b") | $(fmt "$p") | $(ratio "$b" "$p") | $(fmt "$brss") | $(fmt "$prss") | $(fmt "$bplan") s | | | | |"
            fi
        else
            echo "| $label | $batch | $threads | $(fmt "$bms") | $(fmt "$pms") | $(ratio "$pms" "$bms") | $(fmt "$brss") | $(fmt "$prss") | $(fmt "$bplan") s |"
        fi
    done
}
want train && table train best "training step (forward, cross-entropy, backward, Adam)"
want avx2 && table train avx2 "training step without AVX-512 (basin: AVX2 kernels, OpenBLAS Haswell; PyTorch: oneDNN AVX2)"
want infer && table infer best "inference (eval forward; batch 1 = one clip's latency)"
if want predict; then
    echo
    echo "| predict, one 10 s clip, file to probabilities | threads | basin first call ms | basin ms | PyTorch + torchaudio first call ms | PyTorch + torchaudio ms | PyTorch / basin | basin peak RSS, MiB | PyTorch peak RSS, MiB |"
    echo "|---|---|---|---|---|---|---|---|---|"
    grep "^RESULT predict " "$log" | while read -r _ _ model _ _ _ threads _ _ rest; do
        pline=$(grep "^PEER predict $model batch 1 threads $threads " "$log")
        b=$(num ms "$rest"); p=$(num ms "$pline")
        echo "| $model | $threads | $(fmt "$(num first_ms "$rest")") | $(fmt "$b") | $(fmt "$(num first_ms "$pline")") | $(fmt "$p") | $(ratio "$p" "$b") | $(fmt "$(num rss_mib "$rest")") | $(fmt "$(num peak_rss_mib "$pline")") |"
    done
fi
if want logmel; then
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
if want listen; then
    echo
    echo "| listening pipeline, default model (5 s windows) | threads | hop ms | front end, incremental ms | front end, whole window ms | model ms | a window ms | share of the hop |"
    echo "|---|---|---|---|---|---|---|---|"
    grep '^RESULT listen_cost ' "$log" | while read -r _ _ _ t rest; do
        echo "| per window | $t | $(fmt "$(num hop_ms "$rest")") | $(fmt "$(num frontend_inc_ms "$rest")") | $(fmt "$(num frontend_full_ms "$rest")") | $(fmt "$(num model_ms "$rest")") | $(fmt "$(num window_ms "$rest")") | $(fmt "$(num hop_share_pct "$rest")") % |"
    done
    echo
    echo "| live, paced like a sound card | threads | input Hz | windows | latency ring -> probabilities, mean / median / max ms | onset (a sound -> a window holding it), mean / max ms | CPU, % of a core | frames dropped |"
    echo "|---|---|---|---|---|---|---|---|"
    grep '^RESULT listen_live ' "$log" | while read -r _ _ _ t rest; do
        echo "| live | $t | $(num rate "$rest") | $(num windows "$rest") | $(fmt "$(num latency_mean_ms "$rest")") / $(fmt "$(num latency_median_ms "$rest")") / $(fmt "$(num latency_max_ms "$rest")") | $(fmt "$(num onset_mean_ms "$rest")") / $(fmt "$(num onset_max_ms "$rest")") | $(fmt "$(num cpu_pct "$rest")") | $(num dropped "$rest") |"
    done
fi
if want landscape; then
    # issue 9: an 11 x 11 landscape and the top Hessian eigenvalue of the default model over
    # the whole train split, each against PyTorch on the same data in the same run (basin's
    # binary is built beside the benchmark's)
    basin=${BASIN:-$(dirname "$bench")/basin}
    echo
    echo "| analysis (issue 9) | basin | PyTorch | basin / PyTorch speed | agreement |"
    echo "|---|---|---|---|---|"
    sh tests/bench/landscape.sh "$basin" 2 > "$log.landscape" 2>&1; cat "$log.landscape" >> "$log"
    grep -E '^(\| landscape|runs:)' "$log.landscape" || sed 's/^/    /' "$log.landscape"
    sh tests/bench/hessian.sh "$basin" 2 > "$log.hessian" 2>&1; cat "$log.hessian" >> "$log"
    grep '^| top Hessian' "$log.hessian" || sed 's/^/    /' "$log.hessian"
    rm -f "$log.landscape" "$log.hessian"
fi
if want workbench; then
    # issue 8: the split view's cost to a training run (tmux; skipped without it)
    basin=${BASIN:-$(dirname "$bench")/basin}
    sh tests/bench/workbench.sh "$basin" 2 3 3 > "$log.wb" 2>&1
    echo
    echo "| training in the split view (curves live) vs headless | threads | headless s | split view s | slowdown |"
    echo "|---|---|---|---|---|"
    line=$(grep '^RESULT workbench ' "$log.wb")
    if [ -n "$line" ]; then
        echo "| cpresnet width 16, 3 epochs of the default data set | $(num threads "$line") | $(fmt "$(num headless_s "$line")") | $(fmt "$(num split_s "$line")") | $(num slowdown_pct "$line") % |"
    else
        sed 's/^/    /' "$log.wb"
    fi
    rm -f "$log.wb"
fi
[ $have_peer = 1 ] || echo "(PyTorch peer unavailable: install python3-torch python3-torchaudio for the ratios)"
