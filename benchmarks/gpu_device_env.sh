# Source on a lent GPU machine (Python 3.12, torch preinstalled): install the wheels carried in
# .whl/ (pymunk, gymnasium, hydra-core, omegaconf, antlr4, zstandard, cffi, pycparser,
# farama-notifications) into /tmp/site, stub imageio_ffmpeg (no video files are read there) and
# set PYTHONPATH; LOCAL=1 skips the install for a dry run here. Sets PY and DEVICE.
[ -n "${LOCAL:-}" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
  --upgrade --target /tmp/site .whl/*.whl || exit 1
mkdir -p /tmp/site && : > /tmp/site/imageio_ffmpeg.py
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
