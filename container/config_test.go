package container

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseVolume(t *testing.T) {
	cases := []struct {
		in   string
		want Volume
		err  bool
	}{
		{"/srv/data:/data", Volume{Source: "/srv/data", Target: "/data"}, false},
		{"/srv/data/:/data/:ro", Volume{Source: "/srv/data", Target: "/data", ReadOnly: true}, false},
		{"64M:/var/lib", Volume{SizeBytes: 64 << 20, Target: "/var/lib"}, false},
		{"1G:/x:rw", Volume{SizeBytes: 1 << 30, Target: "/x"}, false},
		{"/a:/", Volume{}, true},
		{"/a:rel", Volume{}, true},
		{"rel:/x", Volume{}, true},
		{"/a:/b:rx", Volume{}, true},
		{"/a", Volume{}, true},
		{"-5M:/x", Volume{}, true},
	}
	for _, tc := range cases {
		got, err := ParseVolume(tc.in)
		if (err != nil) != tc.err || (err == nil && got != tc.want) {
			t.Errorf("ParseVolume(%q) = %+v, %v", tc.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("ParseVolume(%q): error %v is not ErrInvalidConfig", tc.in, err)
		}
	}
}

func TestParseRestartPolicy(t *testing.T) {
	for in, want := range map[string]RestartPolicy{
		"": {Name: "no"}, "no": {Name: "no"}, "always": {Name: "always"},
		"on-failure": {Name: "on-failure"}, "on-failure:3": {Name: "on-failure", MaxRetries: 3},
	} {
		if got, err := ParseRestartPolicy(in); err != nil || got != want {
			t.Errorf("%q: %+v %v", in, got, err)
		}
	}
	for _, bad := range []string{"sometimes", "always:2", "on-failure:x", "on-failure:-1"} {
		if _, err := ParseRestartPolicy(bad); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%q accepted: %v", bad, err)
		}
	}
}

func TestResolveAndValidate(t *testing.T) {
	img := ImageConfig{Entrypoint: []string{"/bin/app"}, Cmd: []string{"--serve"}, Env: []string{"A=1"}, WorkingDir: "/srv", User: "1000"}
	c := Config{ID: "web", Lower: "/x", Env: []string{"B=2"}}
	c.Resolve(img)
	if got := c.Args(); len(got) != 2 || got[0] != "/bin/app" || c.WorkDir != "/srv" || c.User != "1000" || len(c.Env) != 2 {
		t.Errorf("resolved %+v", c)
	}
	c2 := Config{ID: "web", Lower: "/x", Entrypoint: []string{"/bin/sh"}}
	c2.Resolve(img)
	if len(c2.Cmd) != 0 {
		t.Errorf("--entrypoint must drop the image cmd: %+v", c2.Cmd)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	for name, bad := range map[string]Config{
		"id":      {ID: "../x", Lower: "/x", Cmd: []string{"a"}},
		"lower":   {ID: "a", Lower: "x", Cmd: []string{"a"}},
		"nothing": {ID: "a", Lower: "/x"},
		"user":    {ID: "a", Lower: "/x", Cmd: []string{"a"}, User: "bad user"},
		"memory":  {ID: "a", Lower: "/x", Cmd: []string{"a"}, MemoryBytes: 1000},
		"env":     {ID: "a", Lower: "/x", Cmd: []string{"a"}, Env: []string{"NOEQUALS"}},
		"workdir": {ID: "a", Lower: "/x", Cmd: []string{"a"}, WorkDir: "rel"},
		"disk":    {ID: "a", Lower: "/x", Cmd: []string{"a"}, Volumes: []Volume{{SizeBytes: 10, Target: "/d"}}},
	} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParseVolume(f *testing.F) {
	for _, s := range []string{"/a:/b", "/a:/b:ro", "64M:/x", "::", "1:/", "9999999999999G:/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVolume(s)
		if err != nil {
			return
		}
		if v.Target == "/" || v.Target[0] != '/' {
			t.Fatalf("bad target accepted: %+v", v)
		}
		if v.Source == "" && v.SizeBytes <= 0 {
			t.Fatalf("volume without source or size: %+v", v)
		}
	})
}

func FuzzDecodeImageConfig(f *testing.F) {
	f.Add([]byte(`{"config":{"Entrypoint":["/bin/sh"],"Env":["A=b"],"WorkingDir":"/x"}}`))
	f.Add([]byte(`{"config":null}`))
	f.Add([]byte(`{"config":{"Env":["bad"]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeImageConfig(b)
		if err != nil {
			return
		}
		for _, e := range c.Env {
			if !containsEq(e) {
				t.Fatalf("env %q accepted", e)
			}
		}
	})
}

func containsEq(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			return true
		}
	}
	return false
}

// The runtime warns when the binary's directory and the state directory are
// inside one another (libcontainer then copies the binary at every start).
func TestNewWarnsOfOverlappingBinaryAndState(t *testing.T) {
	dir := t.TempDir()
	self := filepath.Join(dir, "zos")
	if err := os.WriteFile(self, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		root string
		warn bool
	}{
		{filepath.Join(dir, "state"), true},
		{filepath.Join(t.TempDir(), "state"), false},
	} {
		var logs bytes.Buffer
		if _, err := New(tc.root, self, slog.New(slog.NewTextHandler(&logs, nil)), nil); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(logs.String(), "copies the binary"); got != tc.warn {
			t.Errorf("state %s, binary %s: warned %v, want %v\n%s", tc.root, self, got, tc.warn, logs.String())
		}
	}
}
