#!/usr/bin/env bash
# Publishes the CLI and the GPU test runner as self-contained, trimmed single files into .gpu/app and .gpu/tests
# (git-ignored) for the GPU machine, which has no .NET. Trimmed because the device tool carries at most 64 MiB: the
# repository's tracked files are ~39 MiB and an untrimmed single file ~39 MiB, a trimmed one ~15 MiB (so carry one
# of the two folders per call; a warm machine keeps the other). Partial trimming keeps our own assemblies and
# NUnit whole; JSON reflection is re-enabled (the trimmer turns it off) because --json serializes records by reflection.
#   tools/publish-gpu.sh [app|tests|all]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
what="${1:-all}"
publish() {
  dotnet publish "$1" -c Release -r linux-x64 --self-contained \
    -p:PublishSingleFile=true -p:EnableCompressionInSingleFile=true -p:InvariantGlobalization=true \
    -p:PublishTrimmed=true -p:TrimMode=partial -p:JsonSerializerIsReflectionEnabledByDefault=true \
    -p:TreatWarningsAsErrors=false -p:DebugType=none -p:SuppressTrimAnalysisWarnings=true -o "$2" --nologo -v quiet
  # The test SDK drops its code-coverage collector next to the test runner; the GPU machine does not need it.
  rm -rf "$2/Microsoft.CodeCoverage" "$2"/*.pdb
  du -sh "$2"
}
[[ "$what" == app || "$what" == all ]] && publish "$root/src/Convert" "$root/.gpu/app"
[[ "$what" == tests || "$what" == all ]] && publish "$root/tests/Cuda.Tests" "$root/.gpu/tests"
exit 0
