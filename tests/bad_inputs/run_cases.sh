#!/usr/bin/env bash
# The bad-input corpus (docs/reliability.md has the table): every reader and
# subcommand of kiln given a broken file, folder or flag. Each case asserts the exit
# code, a message naming the file (or flag) and the problem, that kiln did not crash
# (no abort, no sanitizer report), that its output file was not created, and that
# no half-written temporary (*.tmp.*) was left anywhere under the work folder. A
# train that fails may leave its run folder (split.json, the emptied lock), never a
# checkpoint: its --out is RUN/last.safetensors.
#   run_cases.sh KILN WORK FIXTURES
set -uo pipefail
kiln=$1 work=$2 fixtures=$3
export OMP_NUM_THREADS=1
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
W=$work
base=(--filters 2 --filter-org same --dense 4 --quiet --no-report --workers 1 --cache-dir "$W/cache")
small=(--size 32 --batch-size 2 --device cpu "${base[@]}")

# ---- inputs: a good folder and checkpoint, and broken copies of each kind of file
cp -r "$fixtures/tiny_folder" data
"$kiln" train data --split 8/1/1 --epochs 1 "${small[@]}" --run-dir ref > ref.log 2>&1 || { cat ref.log; exit 1; }
ckpt=ref/last.safetensors
"$kiln" pack data --size 8 -o good.kpack > /dev/null 2>&1 || exit 1
onnx=$fixtures/onnx_plain_folded.onnx
size=$(stat -c %s "$onnx"); head -c $((size / 2)) "$onnx" > trunc.onnx
head -c 700 "$fixtures/small_net.safetensors" > garbage.onnx  # a safetensors file passed as ONNX
: > empty.onnx
size=$(stat -c %s "$ckpt"); head -c $((size - 100)) "$ckpt" > trunc.safetensors
head -c 100 "$ckpt" > header_cut.safetensors; : > empty.safetensors
printf '\xff\xff\xff\xff\xff\xff\xff\x7f{}' > huge_header.safetensors
# shape (2^62 + 4) of F32 needs 4 * (2^62 + 4) bytes, which wraps to the 16 that are there
header='{"x":{"dtype":"F32","shape":[4611686018427387908],"data_offsets":[0,16]}}'
printf "$(printf '\\x%02x' ${#header})\\x00\\x00\\x00\\x00\\x00\\x00\\x00%s" "$header" > wrap.safetensors
head -c 16 /dev/zero >> wrap.safetensors
cp "$fixtures/onnx_nets.safetensors" plain.safetensors
size=$(stat -c %s good.kpack); head -c $((size / 2)) good.kpack > trunc.kpack
{ printf 'NOTAPACK'; tail -c +9 good.kpack; } > magic.kpack; : > empty.kpack
mkdir -p three/a three/b three/c
for c in a b c; do cp data/dark/0.png data/dark/1.png data/dark/2.png data/dark/3.png "three/$c/"; done
mkdir -p one/a one/b && cp data/dark/0.png one/a/ && cp data/light/0.png one/b/
mkdir -p emptydir noclass/a
cp -r data cut_jpeg && head -c 40 data/dark/1.png > cut_jpeg/dark/1.png
cp -r data zero_png && : > zero_png/light/3.png
cp -r data text_jpg && echo "not an image" > text_jpg/dark/note.jpg
mkdir -p bomb/a bomb/b && cp data/dark/0.png bomb/b/
printf '\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x4e\x20\x00\x00\x4e\x20\x08\x00\x00\x00\x00\x00\x00\x00\x00' > bomb/a/big.png
mkdir -p "utf8_"$'\xff'"/a" "utf8_"$'\xff'"/b" && cp data/dark/0.png "utf8_"$'\xff'"/a/" && cp data/light/0.png "utf8_"$'\xff'"/b/"
printf 'image,label,extra\ndark/0.png,dark\n' > data/three_columns.csv
printf 'image,label\ndark/0.png,dark\ndark/missing.png,dark\n' > data/missing.csv
: > data/empty.csv; printf 'image,label\n' > data/header_only.csv
printf 'image,label\ndark/0.png,\n' > data/empty_label.csv
# a Tiny-ImageNet layout (data/tiny_imagenet.h) of two classes, and broken copies of it
mkdir -p tin/train/n01/images tin/train/n02/images tin/val/images
printf 'n01\nn02\n' > tin/wnids.txt
for i in 0 1 2 3; do cp data/dark/$i.png tin/train/n01/images/; cp data/light/$i.png tin/train/n02/images/; done
cp data/dark/0.png tin/val/images/v0.png && cp data/light/0.png tin/val/images/v1.png
printf 'v0.png\tn01\t0\t0\t7\t7\nv1.png\tn02\t0\t0\t7\t7\n' > tin/val/val_annotations.txt
cp -r tin tin_no_annotations && rm tin_no_annotations/val/val_annotations.txt
cp -r tin tin_missing_file && printf 'v9.png\tn01\t0\t0\t7\t7\n' >> tin_missing_file/val/val_annotations.txt
cp -r tin tin_unknown_wnid && printf 'v1.png\tn77\t0\t0\t7\t7\n' >> tin_unknown_wnid/val/val_annotations.txt
# a multi-size pack of it (data/pack_set.h), one with a member missing, one whose 32 px
# member holds other images than its index says, and an index of another format
"$kiln" pack tin --size 16,32 -o set.kpacks > /dev/null 2>&1 || exit 1
mkdir -p set_missing set_count && cp set.kpacks set.16.kpack set_missing/ && cp set.kpacks set.16.kpack set_count/
"$kiln" pack one --size 32 -o set_count/set.32.kpack > /dev/null 2>&1 || exit 1
printf '{"format": "something else"}' > notaset.kpacks
# resnet_custom halving twice (depths 1,1,1): sizes must be divisible by 4
rc=(--model resnet_custom --depths 1,1,1 --widths 4,8,8 --separable --size 32 --batch-size 2 --device cpu --quiet
    --no-report --workers 1 --cache-dir "$W/cache")
flock locked/.kiln.lock true 2> /dev/null || mkdir -p locked
( flock locked/.kiln.lock sleep 60 ) & holder=$!
sleep 0.2

pass=0 failed=0
# check NAME EXPECTED_EXIT REGEX [--out FILE] -- COMMAND...
check() {
  local name=$1 want=$2 regex=$3 out=""
  shift 3
  if [ "$1" = --out ]; then out=$2; shift 2; fi
  shift  # --
  local log="$W/case_$name.log" status=0
  "$@" > "$log" 2>&1 || status=$?
  local why=""
  [ "$status" = "$want" ] || why="exit $status, expected $want"
  grep -qE -- "$regex" "$log" || why="$why; no message matching /$regex/"
  grep -qE "terminate called|Aborted|AddressSanitizer|runtime error:|Segmentation" "$log" && why="$why; crashed"
  [ -n "$out" ] && [ -e "$out" ] && why="$why; $out was written"
  [ -n "$(find "$W" -name '*.tmp.*' 2> /dev/null)" ] && why="$why; temporaries left: $(find "$W" -name '*.tmp.*')"
  if [ -z "$why" ]; then
    pass=$((pass + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); echo "FAIL $name: ${why#; }"; tail -3 "$log" | sed 's/^/     /'
  fi
}
K=$kiln
# ONNX
check onnx_truncated 1 "trunc.onnx.*(truncated|overruns)" --out o1.safetensors -- $K import trunc.onnx --arch resnet18 -o o1.safetensors
check onnx_garbage 1 "garbage.onnx: .* at byte [0-9]+ \\(the file is truncated or not an ONNX model" --out o2.safetensors -- $K import garbage.onnx --arch resnet18 -o o2.safetensors
check onnx_empty 1 "empty.onnx.*no graph" --out o3.safetensors -- $K import empty.onnx --arch mobilenet_v2 -o o3.safetensors
check onnx_unsupported_op 1 "onnx_unsupported.onnx: op LRN .* is not supported" --out o4.safetensors -- $K import "$fixtures/onnx_unsupported.onnx" --arch resnet18 -o o4.safetensors
check onnx_wrong_architecture 1 "onnx_plain_folded.onnx: Conv node .* does not match Conv2d .conv1." --out o5.safetensors -- $K import "$onnx" --arch resnet18 -o o5.safetensors
check onnx_truncated_pretrained 1 "trunc.onnx: length-delimited field .* overruns" --out r1/last.safetensors -- $K train data --split 8/1/1 --epochs 1 "${small[@]}" --model resnet18 --pretrained trunc.onnx --run-dir r1
check onnx_truncated_predict 1 "trunc.onnx" --out p1.csv -- $K predict --pretrained trunc.onnx --arch mobilenet_v2 data/dark/0.png -o p1.csv
# safetensors and checkpoints
check ckpt_truncated_eval 1 "trunc.safetensors.*(data_offsets|reading)" -- $K eval trunc.safetensors data
check ckpt_header_cut 1 "header_cut.safetensors.*header length" -- $K eval header_cut.safetensors data
check ckpt_empty 1 "empty.safetensors.*shorter than its 8-byte header" -- $K eval empty.safetensors data
check ckpt_huge_header 1 "huge_header.safetensors.*header length" -- $K eval huge_header.safetensors data
check ckpt_wrapping_size 1 "wrap.safetensors.*byte size beyond int64" -- $K eval wrap.safetensors data
check ckpt_not_a_checkpoint 1 "plain.safetensors.*not a kiln checkpoint" -- $K eval plain.safetensors data
check ckpt_truncated_predict 1 "trunc.safetensors" --out p2.csv -- $K predict trunc.safetensors data/dark/0.png -o p2.csv
check ckpt_truncated_resume 1 "trunc.safetensors" -- $K train data --split 8/1/1 --epochs 2 "${small[@]}" --resume trunc.safetensors --run-dir r2
check ckpt_other_architecture 1 "--resume: .*last.safetensors was trained with model.arch = \"cnn5\", this run has \"resnet18\"" -- $K train data --split 8/1/1 --epochs 2 "${small[@]}" --model resnet18 --resume "$ckpt" --run-dir r3
check ckpt_other_data_set 1 "split: file 'dark/0.png' is not in dataset .*three" -- $K eval "$ckpt" three
check ckpt_other_classes_resume 1 "--resume: .*last.safetensors was trained with model.cnn5.num_classes = 2, this run has 3" -- $K train three --split 2/1/1 --epochs 2 "${small[@]}" --resume "$ckpt" --run-dir r4
check resume_other_sampler 1 "--resume: .*last.safetensors was trained with sampler.kind = \"none\", this run has \"balanced\" \(set by --sampler" -- $K train data --split 8/1/1 --epochs 2 "${small[@]}" --sampler balanced --resume "$ckpt" --run-dir r4s
check resume_other_augment 1 "--resume: .*was trained with augment = .*this run has .*hflip" -- $K train data --split 8/1/1 --epochs 2 "${small[@]}" --augment hflip:0.5 --resume "$ckpt" --run-dir r4a
check ckpt_truncated_export 1 "trunc.safetensors" --out e1.onnx -- $K export-onnx trunc.safetensors -o e1.onnx
# kpack
check kpack_truncated_train 1 "trunc.kpack.*truncated" --out r5/last.safetensors -- $K train trunc.kpack --split 4/1/1 --epochs 1 "${small[@]}" --run-dir r5
check kpack_bad_magic 1 "magic.kpack.*not a kpack" -- $K eval "$ckpt" magic.kpack
check kpack_empty 1 "empty.kpack.*too short" -- $K eval "$ckpt" empty.kpack
# images
check jpeg_truncated_in_folder 1 "cut_jpeg/dark/1.png.*--skip-bad" --out r6/last.safetensors -- $K train cut_jpeg --split 8/1/1 --epochs 1 "${small[@]}" --run-dir r6
check png_zero_bytes_in_folder 1 "zero_png/light/3.png" --out r7/last.safetensors -- $K train zero_png --split 8/1/1 --epochs 1 "${small[@]}" --run-dir r7
check text_named_jpg 1 "note.jpg.*(JPEG, PNG and BMP|unknown|corrupt)" --out k1.kpack -- $K pack text_jpg --size 8 -o k1.kpack
check image_corrupt_predict 1 "note.jpg" --out p3.csv -- $K predict "$ckpt" text_jpg/dark/note.jpg -o p3.csv
check png_decompression_bomb 1 "big.png.*20000x20000.*decompression-bomb" --out k2.kpack -- $K pack bomb --size 8 -o k2.kpack
check png_bomb_skip_bad 0 "warning: skipping.*big.png" -- $K pack bomb --size 8 --skip-bad -o k3.kpack
check preview_empty_folder 1 "no .jpg/.jpeg/.png/.bmp images under 'emptydir'" --out prev.png -- $K augment-preview emptydir -o prev.png
# CSV
check csv_three_columns 1 "three_columns.csv' row 2 \\(line 2\\): 2 column\\(s\\), expected 3" -- $K pack data/three_columns.csv --size 8 -o k4.kpack
check csv_missing_image 1 "missing.csv' row 3 \\(line 3\\), column 1: image file .*missing.png' does not exist" -- $K pack data/missing.csv --size 8 -o k5.kpack
check csv_empty 1 "empty.csv' is empty" -- $K pack data/empty.csv --size 8 -o k6.kpack
check csv_header_only 1 "header_only.csv' lists no images" -- $K pack data/header_only.csv --size 8 -o k7.kpack
check csv_empty_label 1 "empty_label.csv' row 2 \\(line 2\\), column 2 \\('label'\\): no label" -- $K pack data/empty_label.csv --size 8 -o k8.kpack
# folders and paths
check folder_empty 1 "emptydir.*no class sub-folders" --out r8/last.safetensors -- $K train emptydir --epochs 1 "${small[@]}" --run-dir r8
check folder_empty_class 1 "empty class folder .*noclass/a" -- $K pack noclass --size 8 -o k9.kpack
check folder_missing 1 "nowhere" -- $K pack nowhere --size 8 -o k10.kpack
check path_not_utf8 1 "not valid UTF-8" --out k11.kpack -- $K pack "utf8_"$'\xff' --size 8 -o k11.kpack
check split_one_image_classes 1 "split per_class 300/75/75: class 'a' has 1 images, needs 450" --out r9/last.safetensors -- $K train one --split 300/75/75 --epochs 1 "${small[@]}" --run-dir r9
# flags
check flag_split_garbage 1 "split: 'abc' must be train/val/test images per class" --out r10/last.safetensors -- $K train data --split abc --epochs 1 "${small[@]}" --run-dir r10
check flag_batch_size_zero 105 "--batch-size: Value 0 not in range" --out r11/last.safetensors -- $K train data --split 8/1/1 --epochs 1 "${base[@]}" --size 32 --device cpu --batch-size 0 --run-dir r11
check flag_epochs_negative 105 "epochs" --out r12/last.safetensors -- $K train data --epochs -1 "${small[@]}" --run-dir r12
check flag_size_negative 105 "--size: Value -5 not in range" --out r13/last.safetensors -- $K train data --split 8/1/1 --epochs 1 "${base[@]}" --batch-size 2 --device cpu --size -5 --run-dir r13
check flag_schedule_huge 1 "step_size.*finite number" --out r14/last.safetensors -- $K train data --split 8/1/1 --epochs 1 "${small[@]}" --schedule step:step_size=1e300 --run-dir r14
check flag_augment_bad 1 "augment: .crop:2-1. needs 0 <= lo <= hi" --out r15/last.safetensors -- $K train data --split 8/1/1 --epochs 1 "${small[@]}" --augment crop:2-1 --run-dir r15
check flag_on_nan_unknown 105 "on-nan" --out r16/last.safetensors -- $K train data --epochs 1 "${small[@]}" --on-nan maybe --run-dir r16
check flag_checkpoint_every_negative 105 "checkpoint-every" --out r17/last.safetensors -- $K train data --epochs 1 "${small[@]}" --checkpoint-every -3 --run-dir r17
check flag_device_unknown 1 "cuda:7 is not available" --out r18/last.safetensors -- $K train data --split 8/1/1 --epochs 1 "${base[@]}" --size 32 --batch-size 2 --device cuda:7 --run-dir r18
# Tiny-ImageNet layout and the capped benchmark's flags (docs/capped-benchmark.md)
check tiny_no_val_annotations 1 "tin_no_annotations.*val_annotations.txt is missing" --out r20/last.safetensors -- $K train tin_no_annotations --val official --epochs 1 "${small[@]}" --run-dir r20
check tiny_annotation_missing_file 1 "val_annotations.txt:3: 'v9.png' is not in .*val/images" --out r21/last.safetensors -- $K train tin_missing_file --val official --epochs 1 "${small[@]}" --run-dir r21
check tiny_wnid_unknown 1 "val_annotations.txt:3: wnid 'n77' is not in wnids.txt" --out r22/last.safetensors -- $K train tin_unknown_wnid --val official --epochs 1 "${small[@]}" --run-dir r22
check tiny_classes_too_many 1 "--classes 3: .*2 classes" --out r23/last.safetensors -- $K train tin --val official --classes 3 --epochs 1 "${small[@]}" --run-dir r23
check progressive_out_of_order 1 "--progressive: entry 2 '16:1': sizes are out of order" --out r24/last.safetensors -- $K train tin --val official --epochs 2 "${rc[@]}" --progressive 32:0,16:1 --run-dir r24
check progressive_not_divisible 1 "--progressive: entry 2 '30:1': the model cannot take 30x30 images: .*divisible by 4" --out r25/last.safetensors -- $K train tin --val official --epochs 2 "${rc[@]}" --progressive 16:0,30:1 --run-dir r25
check progressive_first_not_epoch_0 1 "--progressive: the first entry '16:2' must start at epoch 0" --out r26/last.safetensors -- $K train tin --val official --epochs 2 "${rc[@]}" --progressive 16:2,32:3 --run-dir r26
check max_params_exceeded 1 "parameters, over the cap of 100" --out r27/last.safetensors -- $K train tin --val official --epochs 1 "${rc[@]}" --max-params 100 --run-dir r27
# multi-size packs (`kiln pack --size 16,32 -o set.kpacks`, docs/data.md)
check packset_sizes_descending 1 "--size 32,16: sizes must be ascending \(16 comes after 32\)" --out ps1.kpacks -- $K pack data --size 32,16 -o ps1.kpacks
check packset_size_twice 1 "--size 16,16: size 16 is listed twice" --out ps2.kpacks -- $K pack data --size 16,16 -o ps2.kpacks
check packset_size_zero 1 "--size 0,16: a size must be at least 1 pixel" --out ps3.kpacks -- $K pack data --size 0,16 -o ps3.kpacks
check packset_sizes_into_kpack 1 "-o ps4.kpack: --size 16,32 writes one pack per size, so the output must be a pack set index ending in .kpacks" --out ps4.kpack -- $K pack data --size 16,32 -o ps4.kpack
check packset_member_missing 1 "set_missing/set.kpacks': its 32 px member .*set.32.kpack' is missing" --out r28/last.safetensors -- $K train set_missing/set.kpacks --val official --epochs 2 "${rc[@]}" --progressive 16:0,32:1 --run-dir r28
check packset_member_count 1 "set_count/set.32.kpack' holds 2 images .*the index says 10" --out r29/last.safetensors -- $K train set_count/set.kpacks --val official --epochs 2 "${rc[@]}" --progressive 16:0,32:1 --run-dir r29
check packset_progressive_size_absent 1 "--progressive 16:0,24:1: the pack set 'set.kpacks' has no 24 px pack \(it has 16/32 px\)" --out r30/last.safetensors -- $K train set.kpacks --val official --epochs 2 "${rc[@]}" --progressive 16:0,24:1 --run-dir r30
check packset_size_absent 1 "--size: the pack set 'set.kpacks' has no 24 px pack \(it has 16/32 px\)" --out r31/last.safetensors -- $K train set.kpacks --val official --epochs 1 "${base[@]}" --size 24 --batch-size 2 --device cpu --run-dir r31
check packset_not_an_index 1 "notaset.kpacks' is not a pack set index" -- $K eval "$ckpt" notaset.kpacks
# runs
check run_folder_locked 1 "locked.*in use by another kiln process" -- $K train data --split 8/1/1 --epochs 1 "${small[@]}" --run-dir locked
check loss_nan_stops 1 "training loss became (NaN|inf) between step .*--on-nan skip" -- $K train data --split 8/1/1 --epochs 2 "${small[@]}" --optimizer sgd --lr 1e30 --log-interval 2 --run-dir r19
kill "$holder" 2> /dev/null; wait 2> /dev/null
echo "bad inputs: $pass passed, $failed failed of $((pass + failed))"
[ "$failed" -eq 0 ] && echo "bad inputs ok"
