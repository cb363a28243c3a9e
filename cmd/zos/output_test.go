package main

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{"4096": 4096, "512M": 512 << 20, "10G": 10 << 30, "1GiB": 1 << 30, "2k": 2048, "3MB": 3 << 20, "1T": 1 << 40} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "G", "-1M", "ten", "99999999999999999999T"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

// A run of one command builds only that command, under the name it is
// called by; anything else builds them all.
func TestRootBuildsOnlyTheCommandRun(t *testing.T) {
	all := newRootCmd(nil).Commands()
	var names []string
	for _, c := range all {
		if c.Name() != "help" && c.Name() != "completion" {
			names = append(names, c.Name())
		}
	}
	if len(names) != len(topCommands()) {
		t.Fatalf("full tree has %v, want the %d top commands", names, len(topCommands()))
	}
	for _, tc := range topCommands() {
		cmds := newRootCmd([]string{tc.name, "--help"}).Commands()
		if len(cmds) != 1 || cmds[0].Name() != tc.name {
			t.Errorf("run of %q built %d commands (first %q), want only it", tc.name, len(cmds), cmds[0].Name())
		}
	}
	for _, args := range [][]string{{"help"}, {"nosuch"}, {"--help"}} {
		if n := len(newRootCmd(args).Commands()); n < len(topCommands()) {
			t.Errorf("%v built %d commands, want all", args, n)
		}
	}
}
