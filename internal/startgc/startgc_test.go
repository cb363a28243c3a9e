package startgc

import (
	"os"
	"os/exec"
	"runtime/debug"
	"slices"
	"testing"
)

func TestEnviron(t *testing.T) {
	got := Environ([]string{"A=1"})
	if !slices.Equal(got, []string{"A=1", "GOGC=off", Env + "=1"}) {
		t.Errorf("Environ: %q", got)
	}
	user := []string{"GOGC=50"}
	if got := Environ(user); !slices.Equal(got, user) {
		t.Errorf("a GOGC of the user was changed: %q", got)
	}
}

// TestRestore runs this test binary with Environ's environment: the child
// starts without collection and Restore turns it back on and unsets both
// variables.
func TestRestore(t *testing.T) {
	if os.Getenv("STARTGC_CHILD") != "" {
		if old := debug.SetGCPercent(-1); old != -1 {
			t.Fatalf("child started with GC percent %d, want off", old)
		}
		Restore()
		if os.Getenv("GOGC") != "" || os.Getenv(Env) != "" {
			t.Fatal("variables left for children")
		}
		if pct := debug.SetGCPercent(100); pct != 100 {
			t.Fatalf("GC percent %d after Restore, want 100", pct)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRestore$")
	env := slices.DeleteFunc(os.Environ(), func(e string) bool { return len(e) > 5 && e[:5] == "GOGC=" })
	cmd.Env = Environ(append(env, "STARTGC_CHILD=1"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
