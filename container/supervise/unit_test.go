package supervise

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		err  bool
	}{
		{"a b  c", []string{"a", "b", "c"}, false},
		{`sh -c 'echo "hi there"'`, []string{"sh", "-c", `echo "hi there"`}, false},
		{`a "b \" c" d\ e`, []string{"a", `b " c`, "d e"}, false},
		{`a ''`, []string{"a", ""}, false},
		{"", nil, true},
		{"  ", nil, true},
		{`a 'b`, nil, true},
		{`a \`, nil, true},
	}
	for _, tc := range cases {
		got, err := SplitCommand(tc.in)
		if (err != nil) != tc.err || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitCommand(%q) = %q, %v", tc.in, got, err)
		}
	}
}

func TestParseUnit(t *testing.T) {
	u, err := ParseUnit("web", []byte("exec: /bin/httpd -f\nafter: [db]\ntest: /bin/true\nenv: {A: b}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if u.Restart != "always" || u.After[0] != "db" || u.Env["A"] != "b" {
		t.Errorf("unit %+v", u)
	}
	o, err := ParseUnit("init", []byte("exec: /bin/setup\noneshot: true\n"))
	if err != nil || o.Restart != "no" {
		t.Errorf("oneshot %+v %v", o, err)
	}
	for name, body := range map[string]string{
		"no exec":       "after: [x]\n",
		"unknown field": "exec: a\nexecc: b\n",
		"bad restart":   "exec: a\nrestart: sometimes\n",
		"bad after":     "exec: a\nafter: ['../x']\n",
		"not yaml":      "exec: [\n",
	} {
		if _, err := ParseUnit("x", []byte(body)); !errors.Is(err, ErrBadUnit) {
			t.Errorf("%s: err %v, want ErrBadUnit", name, err)
		}
	}
	if _, err := ParseUnit("../evil", []byte("exec: a\n")); !errors.Is(err, ErrBadUnit) {
		t.Errorf("bad name accepted")
	}
}

func TestCheckGraph(t *testing.T) {
	ok := []Unit{{Name: "a", After: []string{"b"}}, {Name: "b"}}
	if err := CheckGraph(ok); err != nil {
		t.Error(err)
	}
	cyc := []Unit{{Name: "a", After: []string{"b"}}, {Name: "b", After: []string{"a"}}}
	if err := CheckGraph(cyc); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle: %v", err)
	}
	missing := []Unit{{Name: "a", After: []string{"zz"}}}
	if err := CheckGraph(missing); !errors.Is(err, ErrBadUnit) {
		t.Errorf("missing: %v", err)
	}
}

func FuzzParseUnit(f *testing.F) {
	f.Add([]byte("exec: /bin/a b 'c d'\nafter: [x]\noneshot: true\n"))
	f.Add([]byte("exec: \"a\\\nrestart: on-failure\nenv: {K: v}\n"))
	f.Add([]byte("test: x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := ParseUnit("svc", b)
		if err != nil {
			return
		}
		args, err := SplitCommand(u.Exec)
		if err != nil || len(args) == 0 {
			t.Fatalf("accepted unit with unusable exec %q: %v", u.Exec, err)
		}
		if u.Restart != "always" && u.Restart != "no" && u.Restart != "on-failure" {
			t.Fatalf("restart %q", u.Restart)
		}
	})
}
