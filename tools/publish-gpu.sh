#!/usr/bin/env bash
# Publishes the CLI as one self-contained, trimmed file into .gpu/app (git-ignored) for the GPU machine, which has no
# .NET. Trimmed because the device tool carries at most 64 MiB: the repository's tracked files are ~39 MiB and the
# untrimmed single file ~39 MiB, the trimmed one ~15 MiB. Partial trimming keeps our own assemblies whole; JSON
# reflection is re-enabled (the trimmer turns it off) because our --json output serializes records by reflection.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dotnet publish "$root/src/Convert" -c Release -r linux-x64 --self-contained \
  -p:PublishSingleFile=true -p:EnableCompressionInSingleFile=true -p:InvariantGlobalization=true \
  -p:PublishTrimmed=true -p:TrimMode=partial -p:JsonSerializerIsReflectionEnabledByDefault=true \
  -p:TreatWarningsAsErrors=false -p:DebugType=none -o "$root/.gpu/app"
ls -la "$root/.gpu/app"
