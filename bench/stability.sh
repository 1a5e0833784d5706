#!/usr/bin/env bash
# Run the whole test suite N times in a row (default 20) and count passes, failures and crashes
# (a oneDNN segfault shows as rc 134/139; a run over 15 minutes is killed and counted as a crash:
# rc 124). Usage: bash bench/stability.sh [N]
set -u
cd "$(dirname "$0")/.."
n=${1:-20}; pass=0; fail=0; crash=0
for i in $(seq 1 "$n"); do
  start=$(date +%s)
  timeout -k 30 900 python -m pytest -q -p no:cacheprovider > "/tmp/tvmx-stability-$i.log" 2>&1; rc=$?
  case $rc in 0) pass=$((pass+1));; 1) fail=$((fail+1));; *) crash=$((crash+1));; esac
  echo "run $i: rc=$rc $(tail -1 /tmp/tvmx-stability-$i.log) ($(( $(date +%s) - start )) s)"
done
echo "stability: $pass passed, $fail failed, $crash crashed of $n runs"
[ "$pass" -eq "$n" ]
