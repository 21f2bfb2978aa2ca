#!/usr/bin/env python3
"""
exllamav3's own converter (its convert.py: parser, prepare, main), run from the compat harness's copy of its sources
and prebuilt extension, for side-by-side timings (tools/gpu-sidebyside.sh). On the GPU machine:

  python3 tools/exl3-convert.py COMPAT_DIR -- -i MODEL -o OUT -w WORK -b 4 [-cr 250 -cc 2048 ...]

COMPAT_DIR is a copy of the shared compat folder prepared with its prepare.sh, with exllamav3's calibration text put
back (prepare.sh deletes it: `git archive HEAD exllamav3/conversion/standard_cal_data | tar -x -C COMPAT/.exl3src`)
and the extension built in full mode (`bash COMPAT/build.sh full`: the quantizer's kernels are not in the dense set).
Stops rather than let exllamav3 JIT-build its extension.
"""
import importlib.util
import os
import sys


def main():
    if len(sys.argv) < 3 or sys.argv[2] != "--":
        sys.exit("usage: exl3-convert.py COMPAT_DIR -- CONVERT_ARGS...")
    compat = os.path.abspath(sys.argv[1])
    src, ext_dir = os.path.join(compat, ".exl3src"), os.path.join(compat, "build", "ext")
    sys.path.insert(0, ext_dir)
    sys.path.insert(0, src)
    sys.path.append(os.path.join(compat, "shims"))  # last: an installed package wins over its stand-in
    spec = importlib.util.find_spec("exllamav3_ext")
    if spec is None or os.path.dirname(os.path.abspath(spec.origin or "")) != ext_dir:
        sys.exit(f"exl3-convert.py: no prebuilt exllamav3_ext in {ext_dir}; run {compat}/build.sh full first")
    cal = os.path.join(src, "exllamav3", "conversion", "standard_cal_data", "c4.utf8")
    if not os.path.isfile(cal):
        sys.exit(f"exl3-convert.py: {cal} is missing (prepare.sh deletes exllamav3's calibration text: extract it again)")
    from exllamav3.conversion.convert_model import parser, prepare, main as convert
    args = parser.parse_args(sys.argv[3:])
    in_args, job_state, ok, err = prepare(args)
    if not ok:
        sys.exit(f"exl3-convert.py: exllamav3's converter refused the job: {err}")
    convert(in_args, job_state)


if __name__ == "__main__":
    main()
