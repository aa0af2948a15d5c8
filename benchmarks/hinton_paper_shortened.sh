#!/usr/bin/env bash
# Shortened runs of every recipe of Hinton (2022) and of its backprop baseline, for a 2-core CPU.
# Usage: benchmarks/hinton_paper_shortened.sh mnist|cifar OUT_DIR DATA_DIR
# Each run writes OUT_DIR/NAME (the run directory) and OUT_DIR/NAME.time (GNU time -v: wall
# time and peak resident memory). The full-length runs are the same commands without the
# --set options after the recipe's data set.
set -euo pipefail
group=$1 out=$2 data=$3
ff=(forwardforward train --data-dir "$data" --quiet)

run() {  # NAME RECIPE [--set ...]
    local name=$1 recipe=$2
    shift 2
    /usr/bin/time -v -o "$out/$name.time" "${ff[@]}" --recipe "$recipe" --out "$out/$name" "$@"
}

mkdir -p "$out"
mnist=(--set train.epochs=1)
recurrent=(--set train.epochs=1 --set data.train_limit=5000 --set data.eval_limit=1000)
# split=full: no validation split, so that evaluation (10 labels x 6 iterations) fits.
cifar=(--set data.dataset=cifar10-jpeg --set data.split=full --set train.epochs=1
       --set data.train_limit=500 --set data.eval_limit=100)

pair() {  # NAME RECIPE [--set ...]: the FF run and its backprop baseline
    local name=$1 recipe=$2
    shift 2
    run "$name" "$recipe" "$@"
    run "$name-backprop" "$recipe" "$@" --set trainer=backprop
}

# Ordered by priority, so that a run cut short by the lock's time limit loses the least.
if [ "$group" = mnist ]; then
    pair hinton-mnist-unsupervised hinton-mnist-unsupervised "${mnist[@]}"
    pair hinton-mnist-local hinton-mnist-local "${mnist[@]}"
    pair hinton-mnist-recurrent hinton-mnist-recurrent "${recurrent[@]}"
    pair hinton-mnist-jitter hinton-mnist-jitter "${mnist[@]}"
else
    for layers in 2 3; do
        run "hinton-cifar10-${layers}layer-maxssq" "hinton-cifar10-${layers}layer-maxssq" "${cifar[@]}"
        run "hinton-cifar10-${layers}layer-backprop" "hinton-cifar10-${layers}layer-maxssq" "${cifar[@]}" \
            --set trainer=backprop
        run "hinton-cifar10-${layers}layer-minssq" "hinton-cifar10-${layers}layer-minssq" "${cifar[@]}"
    done
fi
