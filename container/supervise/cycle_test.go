package supervise

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zosgrid/zos/internal/zostest"
)

func TestStopStartKeepsOutput(t *testing.T) {
	sh := zostest.RequiresBinary(t, "sh")
	logs := t.TempDir()
	s, err := New([]Unit{{Name: "web", Exec: sh + " -c 'echo web up; exec sleep 60'", Restart: "always"}}, logs, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for i := 1; i <= 15; i++ {
		zostest.WaitFor(t, 10*time.Second, func() error {
			b, _ := os.ReadFile(filepath.Join(logs, "web.log"))
			if n := strings.Count(string(b), "web up"); n < i {
				st := state(s, "web")
				return fmt.Errorf("cycle %d: %d lines, %+v", i, n, st)
			}
			return nil
		})
		s.Stop("web")
		zostest.WaitFor(t, 10*time.Second, func() error {
			if st := state(s, "web"); st.State != StateStopped {
				return fmt.Errorf("web is %s", st.State)
			}
			return nil
		})
		s.Start("web")
	}
}
