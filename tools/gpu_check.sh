#!/usr/bin/env bash
# Builds and checks the CUDA code on a machine with a GPU: the GPU tests (the operational-convolution
# kernels, every op on CUDA tensors against the CPU, Adam, CUDA graphs, five whole training steps with and
# without graphs, the cuDNN path), compute-sanitizer (memcheck, racecheck, synccheck) on a few kernel shapes
# and the CUDA ops (memcheck on the cuDNN path), the kernel benchmark, and the whole training iteration and
# inference against the PyTorch peer (ours with Auto, with the fused kernels alone, and with cuDNN's
# workspace fixed at 128 MiB), with the op profiles of one Q=1 and one Q=3 iteration; on request (ncu), the
# hardware counters of the fused tensor-core kernels on the generator body's layer; on request (goals), the
# measurements the GPU work's goals are stated in, in the least device time.
#
#   tools/gpu_check.sh [--deps DIR] OUT [STEP...]    STEP: build goals tests sanitize bench train-bench ncu
#                                                    (default: all but goals and ncu)
#   tools/gpu_check.sh pack-deps DIR                 copy the header-only build dependencies (Eigen,
#                                                    nlohmann_json, Catch2, stb) from this machine's
#                                                    /usr into DIR, for a GPU machine that lacks them
#   tools/gpu_check.sh pack-build FILE               pack the programs the steps run from R2C_BUILD_DIR
#                                                    into FILE (.tar.gz; about 30 MB for sm_90 alone,
#                                                    against 88 MB unpacked), for a GPU machine that
#                                                    gets the build by a copy limited in size; there,
#                                                    tar -xzf FILE -C FOLDER and R2C_BUILD_DIR=FOLDER
#
# OUT receives summary.txt (device, toolchain, each step's result), build.txt, goals.txt, goals.json,
# goals_fused.json, tests.txt, sanitize.txt, bench.txt, bench.json, train_step.txt, train_step.json,
# train_step_fused.json, train_step_ws128.json, ncu.txt.
# Environment: R2C_CUDA_ARCHS (default: native), R2C_BUILD_DIR (default: build-gpu), R2C_JOBS,
# R2C_TORCH_PYTHON (the Python with PyTorch for the peer; default: the python3 on PATH),
# R2C_STEP_TIMEOUT (seconds each command of a step may run before it is stopped and counted as failed, so
# that a hung kernel cannot take the whole session; default: none).
# cuDNN is looked for in the CUDA toolkit, the system and the pip wheel nvidia-cudnn; when found, the engine
# is built with its cuDNN path (engine/ops/conv_cudnn.h) and the benchmark with its cuDNN peers. A build
# made elsewhere (R2C_CUDA_ARCHS=90 on a machine without a GPU, say) runs here from R2C_BUILD_DIR without
# the build step: the peer scripts are read from this checkout, and where the loader cannot find cuBLAS or
# cuDNN, the libraries of the Python's NVIDIA wheels (PyTorch's) are put on LD_LIBRARY_PATH. Exit status: 0
# when every step run passed.
set -u -o pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# The programs the steps run, in the build folder.
programs=(tests/test_oper_conv_index tests/test_oper_conv_cuda tests/test_conv_cuda tests/test_ops_cuda
    tests/test_step_cuda tests/test_device_batches tests/test_graph tests/test_adam tests/test_tensor
    tests/test_trainer tests/test_profile r2c benchmarks/bench_oper_conv_cuda benchmarks/bench_train_step)

if [[ ${1:-} == pack-deps ]]; then
    dir=${2:?usage: tools/gpu_check.sh pack-deps DIR}
    mkdir -p "$dir/include" "$dir/share/cmake" "$dir/lib/cmake"
    cp -r /usr/include/eigen3 /usr/include/nlohmann /usr/include/catch2 /usr/include/stb "$dir/include/"
    cp -r /usr/share/eigen3 "$dir/share/"
    cp -r /usr/share/cmake/nlohmann_json "$dir/share/cmake/"
    cp -r /usr/lib/cmake/Catch2 "$dir/lib/cmake/"
    cp /usr/lib/libCatch2WithMain.a "$dir/lib/"  # named by Catch2's CMake package
    echo "packed into $dir: pass --deps $dir on the GPU machine"
    exit 0
fi

if [[ ${1:-} == pack-build ]]; then
    file=${2:?usage: tools/gpu_check.sh pack-build FILE}
    mkdir -p "$(dirname "$file")"
    file=$(cd "$(dirname "$file")" && pwd)/$(basename "$file")
    cd "${R2C_BUILD_DIR:-$root/build-gpu}" && tar -czf "$file" "${programs[@]}" || exit 1
    echo "packed $(du -h "$file" | cut -f1) into $file"
    exit 0
fi

deps=""
if [[ ${1:-} == --deps ]]; then
    deps=$(cd "${2:?--deps needs a folder}" && pwd)
    shift 2
fi
out=${1:?usage: tools/gpu_check.sh [--deps DIR] OUT [build goals tests sanitize bench train-bench ncu]}
shift
steps=("$@")
[[ ${#steps[@]} -eq 0 ]] && steps=(build tests sanitize bench train-bench)
mkdir -p "$out"
out=$(cd "$out" && pwd)
build=${R2C_BUILD_DIR:-$root/build-gpu}
jobs=${R2C_JOBS:-$(nproc)}
torch_python=${R2C_TORCH_PYTHON:-$(command -v python3 || echo /usr/bin/python3)}
summary=$out/summary.txt
status=0
export R2C_SOURCE_DIR=$root R2C_TORCH_PYTHON=$torch_python

note() { echo "$*" | tee -a "$summary"; }
# step NAME LOG COMMAND...: runs the command with its output in LOG, records the result.
step() {
    local name=$1 log=$2
    shift 2
    local start=$SECONDS limit=()
    [[ -n ${R2C_STEP_TIMEOUT:-} ]] && limit=(timeout "$R2C_STEP_TIMEOUT")
    "${limit[@]}" "$@" >>"$log" 2>&1
    local rc=$?
    if [[ $rc -eq 0 ]]; then
        note "$name: ok ($((SECONDS - start)) s)"
    elif [[ ${#limit[@]} -gt 0 && $rc -eq 124 ]]; then
        note "$name: FAILED (stopped after R2C_STEP_TIMEOUT=$R2C_STEP_TIMEOUT s; see $(basename "$log"))"
        status=1
    else
        note "$name: FAILED (exit $rc, $((SECONDS - start)) s; see $(basename "$log"))"
        status=1
    fi
    return $rc
}

# require_peer STEP LOG: the step fails where its log says the PyTorch peer did not run.
require_peer() {
    if grep -q "PyTorch peer .* is unavailable" "$2"; then
        note "$1: the PyTorch peer did not run (see $(basename "$2"))"
        status=1
    fi
}

# The library folders of the NVIDIA wheels (cuBLAS, cuDNN, ...) of a Python, one per line.
wheel_library_dirs() {
    local site
    site=$("$1" -c 'import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0]))' 2>/dev/null) || return 0
    find "$site/nvidia" -name 'lib*.so*' -printf '%h\n' 2>/dev/null | sort -u
}

# Puts the wheels' libraries on LD_LIBRARY_PATH when the built programs miss a library.
find_missing_libraries() {
    local probe=$build/tests/test_graph
    [[ -x $probe ]] || return 0
    ldd "$probe" 2>/dev/null | grep -q "not found" || return 0
    local dirs
    dirs=$(wheel_library_dirs "$torch_python" | paste -sd: -)
    if [[ -n $dirs ]]; then
        export LD_LIBRARY_PATH=$dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
        note "libraries: added $torch_python's NVIDIA wheels to LD_LIBRARY_PATH"
    fi
    ldd "$probe" | grep "not found" >>"$summary"
}

# find_tool NAME PATH...: prints NAME's path on PATH, else the first executable PATH, else nothing.
find_tool() {
    command -v "$1" && return
    shift
    for p in "$@"; do
        [[ -x $p ]] && echo "$p" && return
    done
}

# Prints "INCLUDE_DIR LIBRARY" of a cuDNN 9 installation, or nothing.
find_cudnn() {
    local dirs=(/usr/local/cuda /usr/local/cuda/targets/x86_64-linux /usr /usr/local)
    local wheel
    wheel=$(python3 -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null) && dirs+=("$wheel")
    for d in "${dirs[@]}"; do
        local inc="" lib=""
        for i in "$d/include" "$d/include/x86_64-linux-gnu"; do [[ -f $i/cudnn.h ]] && inc=$i && break; done
        for l in "$d"/lib64/libcudnn.so* "$d"/lib/libcudnn.so* "$d"/lib/x86_64-linux-gnu/libcudnn.so*; do
            [[ -e $l ]] && lib=$l && break
        done
        [[ -n $inc && -n $lib ]] && echo "$inc $lib" && return
    done
}

{
    echo "== $(date -u +%FT%TZ) tools/gpu_check.sh ${steps[*]}"
    nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader 2>&1 || echo "nvidia-smi failed"
    nvcc --version 2>&1 | tail -2
    cmake --version 2>&1 | head -1
} >>"$summary"

for s in "${steps[@]}"; do
    case $s in
    build)
        log=$out/build.txt
        cudnn_args=()
        read -r cudnn_inc cudnn_lib <<<"$(find_cudnn)"
        if [[ -n ${cudnn_lib:-} ]]; then
            cudnn_args=(-DR2C_CUDNN_INCLUDE_DIR="$cudnn_inc" -DR2C_CUDNN_LIBRARY="$cudnn_lib")
            note "cuDNN: $cudnn_lib"
        else
            note "cuDNN: not found; the fused kernels run every convolution and the benchmark has no cuDNN peers"
        fi
        step configure "$log" cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DR2C_WERROR=ON \
            -DCMAKE_CUDA_ARCHITECTURES="${R2C_CUDA_ARCHS:-native}" ${deps:+-DCMAKE_PREFIX_PATH="$deps"} \
            "${cudnn_args[@]}" &&
            step build "$log" cmake --build "$build" -j "$jobs" --target "${programs[@]##*/}"
        ;;
    tests)
        find_missing_libraries
        log=$out/tests.txt
        step test_oper_conv_index "$log" "$build/tests/test_oper_conv_index"
        step test_oper_conv_cuda "$log" "$build/tests/test_oper_conv_cuda" --durations yes
        for t in test_tensor test_conv_cuda test_ops_cuda test_step_cuda test_device_batches test_graph; do
            step "$t" "$log" "$build/tests/$t" --durations yes
        done
        step "test_adam [cuda]" "$log" "$build/tests/test_adam" "[cuda]"
        step "test_trainer [cuda]" "$log" "$build/tests/test_trainer" "[cuda]"
        step "test_profile [cuda]" "$log" "$build/tests/test_profile" "[cuda]"
        step train_cuda "$log" bash "$root/tests/train_cuda.sh" "$build/r2c"
        if grep -q "SKIPPED:" "$log"; then
            note "tests: some GPU tests were SKIPPED on this machine (see tests.txt)"
            status=1
        fi
        ;;
    sanitize)
        find_missing_libraries
        san=$(find_tool compute-sanitizer /usr/local/cuda/bin/compute-sanitizer \
            /usr/local/cuda/compute-sanitizer/compute-sanitizer)
        if [[ -z $san ]]; then
            note "sanitize: compute-sanitizer not found"
            status=1
            continue
        fi
        for tool in memcheck racecheck synccheck; do
            extra=()
            [[ $tool == memcheck ]] && extra=(--leak-check full)
            step "compute-sanitizer $tool" "$out/sanitize.txt" "$san" --tool "$tool" --error-exitcode 1 \
                "${extra[@]}" "$build/tests/test_oper_conv_cuda" "[quick]"
            step "compute-sanitizer $tool (ops)" "$out/sanitize.txt" "$san" --tool "$tool" --error-exitcode 1 \
                "${extra[@]}" "$build/tests/test_ops_cuda"
        done
        # The cuDNN path's own kernels and its scratch buffers around cuDNN's calls (memcheck only: the
        # other tools would check cuDNN's kernels, which are not ours).
        step "compute-sanitizer memcheck (cuDNN path)" "$out/sanitize.txt" "$san" --tool memcheck \
            --error-exitcode 1 "$build/tests/test_conv_cuda" "[cudnn]"
        ;;
    bench)
        find_missing_libraries
        step bench "$out/bench.txt" "$build/benchmarks/bench_oper_conv_cuda" --json "$out/bench.json"
        ;;
    goals)
        # What the goals are stated in (Q = 3, 256x256, TF32): the training iteration at batch 1 and inference
        # at batch 32, ours with Auto beside the peer eager and under torch.compile, then the fused kernels
        # alone; then Auto's choices and the op profile of one iteration. A few minutes in all, so that a
        # short loan of a GPU measures them before anything else.
        find_missing_libraries
        step goals "$out/goals.txt" "$build/benchmarks/bench_train_step" --device cuda --precision tf32 \
            --methods q3 --size 256 --batches 1 --inference-batches 32 --json "$out/goals.json"
        step "goals fused" "$out/goals.txt" "$build/benchmarks/bench_train_step" --device cuda --precision tf32 \
            --conv-algorithm fused --no-torch --methods q3 --size 256 --batches 1 --inference-batches 32 \
            --json "$out/goals_fused.json"
        step "goals op profile" "$out/goals.txt" "$build/r2c" bench --device cuda --method operational --q 3 \
            --size 256 --precision tf32 --warmup 3 --iterations 5 --profile 40
        require_peer goals "$out/goals.txt"
        ;;
    train-bench)
        # The issue's configuration: 256x256, TF32, training batches 1 and 16, inference batches 1 and 32.
        find_missing_libraries
        # Ours as r2c runs by default (--conv-algorithm auto) beside the peer, then ours with the fused kernels
        # alone.
        step train-bench "$out/train_step.txt" "$build/benchmarks/bench_train_step" --device cuda \
            --precision tf32 --size 256 --batches 1,16 --inference-batches 1,32 --json "$out/train_step.json"
        step "train-bench fused" "$out/train_step.txt" "$build/benchmarks/bench_train_step" --device cuda \
            --precision tf32 --conv-algorithm fused --no-torch --size 256 --batches 1,16 --inference-batches 1,32 \
            --json "$out/train_step_fused.json"
        # Auto with cuDNN's workspace fixed at 128 MiB, against the default that scales with each pass: what
        # the scaling gains at batches 16 and 32 (every search's candidates are in the JSON).
        step "train-bench workspace 128 MiB" "$out/train_step.txt" "$build/benchmarks/bench_train_step" \
            --device cuda --precision tf32 --conv-workspace-mb 128 --no-torch --size 256 --batches 1,16 \
            --inference-batches 1,32 --json "$out/train_step_ws128.json"
        # Where the time of a Q=1 and a Q=3 iteration goes, op by op (device events, without graphs): at
        # batch 1 the two took the same time on the H200.
        for q in 1 3; do
            step "train-bench op profile Q=$q" "$out/train_step.txt" "$build/r2c" bench --device cuda \
                --method operational --q $q --size 256 --precision tf32 --warmup 3 --iterations 5 --profile 40
        done
        step "train-bench batch 16 choices" "$out/train_step.txt" "$build/r2c" bench --device cuda \
            --method operational --q 3 --size 256 --batch_size 16 --inference_batch 32 --precision tf32 \
            --warmup 3 --iterations 3
        # Auto in the other two precisions (cuDNN with FMA math in FP32, on bfloat16 stacks in BF16).
        for precision in fp32 bf16; do
            step "train-bench $precision" "$out/train_step.txt" "$build/r2c" bench --device cuda \
                --method operational --q 3 --size 256 --precision $precision --warmup 3 --iterations 5
        done
        require_peer train-bench "$out/train_step.txt"
        ;;
    ncu)
        # Where the fused tensor-core kernels spend their time on the generator body's layer (128->128 3x3,
        # 128x128, batch 1, Q=3, TF32), from the hardware counters: the first launch of each pass in the
        # kernel benchmark (Nsight Compute, the clocks left alone).
        find_missing_libraries
        ncu_bin=$(find_tool ncu /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu)
        if [[ -z $ncu_bin ]]; then
            note "ncu: Nsight Compute not found"
            status=1
            continue
        fi
        # Nsight Compute names template arguments as (bool)0 and (int)3; the demangler as false and 3.
        for kernel in "WindowGather<(\(bool\)1|true)>" "TransposedGather<(\(bool\)0|false)>" \
            "WeightGrad<(\(bool\)1|true)>"; do
            step "ncu $kernel" "$out/ncu.txt" "$ncu_bin" --clock-control none --kernel-name-base demangled \
                -k "regex:oper_wmma_kernel<[a-z0-9_:]*$kernel, (\(int\)3|3), [a-z0-9_:]*Tf32>" -c 1 \
                --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
                --section SchedulerStats --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis \
                --section InstructionStats "$build/benchmarks/bench_oper_conv_cuda" --quick --reps 1
        done
        ;;
    *)
        note "unknown step '$s' (build goals tests sanitize bench train-bench ncu)"
        status=1
        ;;
    esac
done
exit $status
