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
if [ "$group" = mnist ]; then
    short=(--set train.epochs=1)
    for recipe in hinton-mnist-unsupervised hinton-mnist-local hinton-mnist-jitter; do
        run "$recipe" "$recipe" "${short[@]}"
        run "$recipe-backprop" "$recipe" "${short[@]}" --set trainer=backprop
    done
    short=(--set train.epochs=1 --set data.train_limit=5000 --set data.eval_limit=1000)
    run hinton-mnist-recurrent hinton-mnist-recurrent "${short[@]}"
    run hinton-mnist-recurrent-backprop hinton-mnist-recurrent "${short[@]}" --set trainer=backprop
else
    # split=full: no validation split, so that evaluation (10 labels x 6 iterations) fits.
    short=(--set data.dataset=cifar10-jpeg --set data.split=full --set train.epochs=1
           --set data.train_limit=500 --set data.eval_limit=100)
    for layers in 2 3; do
        for objective in maxssq minssq; do
            run "hinton-cifar10-${layers}layer-$objective" "hinton-cifar10-${layers}layer-$objective" "${short[@]}"
        done
        run "hinton-cifar10-${layers}layer-backprop" "hinton-cifar10-${layers}layer-maxssq" "${short[@]}" \
            --set trainer=backprop
    done
fi
