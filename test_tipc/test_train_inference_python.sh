#!/usr/bin/env bash
# The TIPC chain of one model: bash test_tipc/test_train_inference_python.sh CONFIG_TXT MODE
#
# Reads test_tipc/configs/MODEL/train_infer_python.txt (key:value lines, TIPC's layout) and runs
# train (one process, and each launcher entry of gpu_list), eval, export, and Paddle Inference
# on CPU for every combination of --enable-mkldnn, --cpu-threads and --batch-size listed.
# Each step appends "Run successfully with command - ...!" or "Run failed with command - ...!"
# to OUTPUT/results_python.log (OUTPUT: $TIPC_OUTPUT_DIR, default test_tipc/output); each
# command's own output goes to a log beside it.  Exit status: the number of failed steps.
set -uo pipefail
config=${1:?usage: bash test_tipc/test_train_inference_python.sh CONFIG_TXT MODE}
mode=${2:-lite_train_lite_infer}
cd "$(dirname "$0")/.."
[ -f "$config" ] || { echo "no file $config" >&2; exit 2; }
mapfile -t lines < "$config"

param() {  # the value of the first line whose key (the text before its first ':') is $1
  local line
  for line in "${lines[@]}"; do
    if [[ "${line%%:*}" == "$1" ]]; then printf '%s' "${line#*:}"; return 0; fi
  done
  return 1
}

for_mode() {  # "lite_train_lite_infer=2|whole_train_whole_infer=10" -> this mode's value
  local value=$1 part
  if [[ "$value" != *"${mode}="* ]]; then printf '%s' "$value"; return; fi
  IFS='|' read -ra parts <<< "$value"
  for part in "${parts[@]}"; do
    if [[ "${part%%=*}" == "$mode" ]]; then printf '%s' "${part#*=}"; fi
  done
}

model=$(param model_name)
python_bin=$(param python)
out_root=${TIPC_OUTPUT_DIR:-test_tipc/output}/$model
results=${TIPC_OUTPUT_DIR:-test_tipc/output}/results_python.log
mkdir -p "$out_root"
failed=0

status_check() {  # status, command, log file
  if [ "$1" -eq 0 ]; then
    echo "Run successfully with command - $2!" | tee -a "$results"
  else
    echo "Run failed with command - $2! (log: $3)" | tee -a "$results"
    failed=$((failed + 1))
  fi
}

run() {  # log file, command...: run it, its output to the log, and record the outcome
  local log=$1; shift
  "$@" > "$log" 2>&1
  status_check $? "$*" "$log"
}

# "-o Section.key:value" lines of the train section become overrides (null: left out)
overrides=()
for line in "${lines[@]}"; do
  [[ "$line" == "===="*"eval_params"* ]] && break
  if [[ "$line" == "-o "* ]]; then
    key=${line%%:*}; value=$(for_mode "${line#*:}")
    [[ "$key" == "-o Global.output_dir" || "$value" == "null" ]] && continue
    overrides+=(-o "${key#-o }=$value")
  fi
done
if [ "$mode" = lite_train_lite_infer ] && param lite_overrides > /dev/null; then
  read -ra lite <<< "$(param lite_overrides)"
  overrides+=("${lite[@]}")
fi
read -ra train_cmd <<< "$(param norm_train)"
read -ra eval_cmd <<< "$(param eval)"
read -ra export_cmd <<< "$(param norm_export)"
read -ra infer_cmd <<< "$(param inference)"
IFS='|' read -ra gpu_list <<< "$(param gpu_list)"
IFS='|' read -ra mkldnn_list <<< "$(param --enable-mkldnn)"
IFS='|' read -ra thread_list <<< "$(param --cpu-threads)"
IFS='|' read -ra batch_list <<< "$(param --batch-size)"
images=$(param --images)
cuda=$("$python_bin" -c "import paddle; print(int(paddle.is_compiled_with_cuda()))" 2>/dev/null || echo 0)

for gpus in "${gpu_list[@]}"; do
  if [ "$gpus" = "-1" ]; then
    tag=cpu_1proc; launch=()
  else
    IFS=',' read -ra cards <<< "$gpus"
    tag=cpu_${#cards[@]}procs
    launch=(-m paddle.distributed.launch --log_dir "$out_root/norm_train_$tag/launch" --nproc_per_node "${#cards[@]}")
    if [ "$cuda" = 1 ]; then
      tag=gpus_${gpus//,/_}
      launch=(-m paddle.distributed.launch --log_dir "$out_root/norm_train_$tag/launch" --gpus "$gpus")
    fi
  fi
  run_dir=$out_root/norm_train_$tag
  rm -rf "$run_dir"
  mkdir -p "$run_dir"
  run "$run_dir/train.out" "$python_bin" "${launch[@]}" "${train_cmd[@]}" "${overrides[@]}" -o "Global.output_dir=$run_dir"
  run "$run_dir/eval.out" "$python_bin" "${eval_cmd[@]}" "${overrides[@]}" -o "Global.output_dir=$run_dir"
  run "$run_dir/export.out" "$python_bin" "${export_cmd[@]}" "${overrides[@]}" -o "Global.output_dir=$run_dir" \
      --out "$run_dir/inference"
  [ "$gpus" = "-1" ] || continue  # inference once, on what the one-process training exported
  for mkldnn in "${mkldnn_list[@]}"; do
    for threads in "${thread_list[@]}"; do
      for batch in "${batch_list[@]}"; do
        name=infer_cpu_mkldnn_${mkldnn}_threads_${threads}_batchsize_${batch}
        run "$run_dir/$name.out" "$python_bin" "${infer_cmd[@]}" --model-dir "$run_dir/inference" \
            --images "$images" --device cpu --enable-mkldnn "$mkldnn" --cpu-threads "$threads" \
            --batch-size "$batch" --benchmark --out "$run_dir/$name.json"
      done
    done
  done
done
exit "$failed"
