package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// printJSON writes v as indented JSON: the machine-readable output of the
// commands that report structured state.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// parseSize reads a byte count with an optional K, M, G or T suffix (powers
// of 1024; "512M", "512MB" and "512MiB" mean the same).
func parseSize(s string) (uint64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	mult := uint64(1)
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGT", t[n-1]); i >= 0 {
			mult = 1 << (10 * (i + 1))
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseUint(t, 10, 64)
	if err != nil || (v != 0 && v*mult/mult != v) {
		return 0, fmt.Errorf("size %q: want a number with an optional K, M, G or T suffix (e.g. 512M, 10G)", s)
	}
	return v * mult, nil
}
