# Summarizes the Markdown table of backtest_table.sh: per horizon, auto's
# mean MASE against each peer's, how many traces auto beats each peer on,
# the worst auto MASE and the range of auto's coverage.
BEGIN { FS = "|" }
$2 ~ /csv/ {
    h = $3 + 0; n[h]++
    a = $4 + 0; c = $5 + 0
    sa[h] += a
    if (!(h in worst) || a > worst[h]) worst[h] = a
    if (!(h in cmin) || c < cmin[h]) cmin[h] = c
    if (!(h in cmax) || c > cmax[h]) cmax[h] = c
    for (k = 0; k < 3; k++) {
        p = $(11 + k) + 0
        sp[h, k] += p
        if (a < p) win[h, k]++
    }
}
END {
    split("peer:yesterday peer:linreg-1h peer:hw-daily", names, " ")
    for (h = 1; h <= 1000; h++) {
        if (!(h in n)) continue
        printf "\nhorizon %d (%d traces): auto mean MASE %.3f, worst %.3f; coverage %.3f .. %.3f\n", h, n[h], sa[h] / n[h], worst[h], cmin[h], cmax[h]
        for (k = 0; k < 3; k++)
            printf "  vs %-15s mean MASE %.3f, auto better on %d of %d\n", names[k + 1], sp[h, k] / n[h], win[h, k] + 0, n[h]
    }
}
