#!/usr/bin/env bash
# Runs every benchmark under bench/ (each is a Go program that starts zos and
# its reference peers side by side and prints a table with ratios).
# BENCH=zdb,flist limits the run to some of them.
set -euo pipefail
cd "$(dirname "$0")/.."
export ZOS_BIN=${ZOS_BIN:-$PWD/bin/zos}
ran=0
for dir in bench/*/; do
	name=$(basename "$dir")
	if [ -n "${BENCH:-}" ] && [[ ",$BENCH," != *",$name,"* ]]; then
		continue
	fi
	echo "== bench/$name"
	go run "./bench/$name"
	echo
	ran=$((ran + 1))
done
if [ $ran -eq 0 ]; then
	echo "no benchmark matched"
	exit 1
fi
