#!/bin/sh
# Backtests the predictor on every trace of a folder (default ../shared/traces)
# at horizons 1 and 6 steps, confidence 0.9, and prints a Markdown table:
# per trace and horizon, MASE and 90% interval coverage of auto, the MASE of
# each model and peer baseline, and which models auto chose; then a summary
# against the peers (table_summary.awk).
#
# usage: bench/predictor/backtest_table.sh [SCALECAST_BINARY] [TRACES_DIR] [extra backtest args...]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../../build/cli/scalecast}
dir=${2:-$here/../../../shared/traces}
[ $# -ge 2 ] && shift 2 || shift $#

# Per-file reader options, from the formats described in the traces' README.
args_for() {
    case "$1" in
    */bitbrains/*) echo "--column CPU usage [%]" ;;
    *_30_seconds*.csv) echo "--column cpu_util_percent --interval 30" ;;
    */cluster/machine_usage*) echo "--column cpu_util_percent --interval 300" ;;
    */cluster/instance_usage*) echo "--column avg_cpu --interval 300" ;;
    *) echo "" ;;
    esac
}

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
echo "| trace | h | auto MASE | auto cover | last | linear | seasonal | holt | snaive | peer:yesterday | peer:linreg-1h | peer:hw-daily | auto chose (last/linear/seasonal/holt/snaive %) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
find "$dir" -name '*.csv' | LC_ALL=C sort | while read -r f; do
    name=${f#"$dir"/}
    a=$(args_for "$f")
    for h in 1 6; do
        if [ -n "$a" ]; then
            col=$(echo "$a" | sed -e 's/^--column \(.*\) --interval.*/\1/' -e 's/^--column //')
            case "$a" in
            *--interval*) iv=$(echo "$a" | sed 's/.*--interval //')
                out=$("$bin" backtest forecast "$f" --column "$col" --interval "$iv" --horizon $h --confidence 0.9 --tsv "$@") ;;
            *) out=$("$bin" backtest forecast "$f" --column "$col" --horizon $h --confidence 0.9 --tsv "$@") ;;
            esac
        else
            out=$("$bin" backtest forecast "$f" --horizon $h --confidence 0.9 --tsv "$@")
        fi
        echo "$out" | awk -F'\t' -v name="$name" -v h=$h '
            $1 == "series" { next }
            $1 == "chosen" { ch = ""; for (i = 2; i <= NF; i++) { split($i, kv, "="); ch = ch (i > 2 ? "/" : "") sprintf("%.0f", kv[2] * 100) } next }
            { mase[$1] = $4; cov[$1] = $5 }
            END {
                printf "| %s | %d | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %s |\n", name, h,
                    mase["auto"], cov["auto"], mase["last"], mase["linear"], mase["seasonal"], mase["holt"], mase["snaive"],
                    mase["peer:yesterday"], mase["peer:linreg-1h"], mase["peer:hw-daily"], ch
            }'
    done
done
} > "$tmp"
cat "$tmp"
awk -f "$here/table_summary.awk" "$tmp"
