# Sourced by the scripts in this folder: ROOT (the repository) and GFL (the Release build of the CLI), and
# require_gfl, which stops with the build command when that build is missing.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GFL="$ROOT/src/GflTrainer.Cli/bin/Release/net10.0/linux-x64/gfl"
require_gfl() {
  [[ -x "$GFL" ]] || { echo "no gfl binary at $GFL: dotnet build src/GflTrainer.Cli -c Release" >&2; exit 2; }
}
