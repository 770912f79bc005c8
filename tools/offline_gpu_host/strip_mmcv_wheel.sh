#!/usr/bin/env bash
# Shrinks a CUDA build of mmcv 2.1.0 so it can travel with a device run (carry is limited to 64 MiB):
# the extension is built with debug info (about 108 MB); without it the wheel is about 6 MB.
#   bash tools/offline_gpu_host/strip_mmcv_wheel.sh WHEEL_OR_PARTS... [-o OUT_DIR]   (default OUT_DIR: .whl)
# Parts (mmcv-part-00, -01, ...) are joined in the order given. The wheel's RECORD is rewritten by `wheel pack`.
set -euo pipefail
out_dir=.whl; inputs=()
while [ $# -gt 0 ]; do
  case "$1" in -o) out_dir=$2; shift 2;; *) inputs+=("$1"); shift;; esac
done
[ ${#inputs[@]} -gt 0 ] || { echo "usage: $0 WHEEL_OR_PARTS... [-o OUT_DIR]" >&2; exit 2; }
for f in "${inputs[@]}"; do [ -f "$f" ] || { echo "error: no such file: $f" >&2; exit 2; }; done
python=${PYTHON:-python3}
"$python" -m wheel version >/dev/null 2>&1 || { echo "error: '$python -m wheel' is missing; pip install wheel" >&2; exit 2; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cat "${inputs[@]}" > "$work/mmcv-2.1.0-cp312-cp312-linux_x86_64.whl"
"$python" -m wheel unpack -d "$work/unpacked" "$work/mmcv-2.1.0-cp312-cp312-linux_x86_64.whl" >/dev/null
so=$(ls "$work"/unpacked/mmcv-*/mmcv/_ext*.so 2>/dev/null | head -1)
[ -n "$so" ] || { echo "error: the wheel has no mmcv/_ext*.so (was it built with MMCV_WITH_OPS=1?)" >&2; exit 2; }
before=$(stat -c %s "$so"); strip --strip-unneeded "$so"; after=$(stat -c %s "$so")
mkdir -p "$work/packed"
"$python" -m wheel pack -d "$work/packed" "$work"/unpacked/mmcv-* >/dev/null
mkdir -p "$out_dir"
wheel_out=$(ls "$work"/packed/*.whl); dest="$out_dir/$(basename "$wheel_out")"
mv "$wheel_out" "$dest.tmp" && mv "$dest.tmp" "$dest"
echo "extension $before -> $after bytes; wrote $dest ($(stat -c %s "$dest") bytes)"
