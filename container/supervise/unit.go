package supervise

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// ErrBadUnit is returned for a unit file that cannot be used.
var ErrBadUnit = errors.New("supervise: bad unit")

// Unit describes one service.
type Unit struct {
	Name    string            `yaml:"-"`
	Exec    string            `yaml:"exec"`
	After   []string          `yaml:"after"`
	Test    string            `yaml:"test"`
	Oneshot bool              `yaml:"oneshot"`
	Restart string            `yaml:"restart"`
	Env     map[string]string `yaml:"env"`
}

// nameRE is compiled on first use: package init runs in every start of the
// zos binary (each container start runs it three times), and the bounded
// repetition makes a large program.
var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`) })

// ParseUnit decodes and checks one unit.
func ParseUnit(name string, b []byte) (Unit, error) {
	if !nameRE().MatchString(name) {
		return Unit{}, fmt.Errorf("%w: service name %q", ErrBadUnit, name)
	}
	var u Unit
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&u); err != nil {
		return Unit{}, fmt.Errorf("%w: %s: %v", ErrBadUnit, name, err)
	}
	u.Name = name
	if _, err := SplitCommand(u.Exec); err != nil {
		return Unit{}, fmt.Errorf("%w: %s: exec: %v", ErrBadUnit, name, err)
	}
	if u.Test != "" {
		if _, err := SplitCommand(u.Test); err != nil {
			return Unit{}, fmt.Errorf("%w: %s: test: %v", ErrBadUnit, name, err)
		}
	}
	switch u.Restart {
	case "":
		u.Restart = "always"
		if u.Oneshot {
			u.Restart = "no"
		}
	case "always", "on-failure", "no":
	default:
		return Unit{}, fmt.Errorf("%w: %s: restart %q (want always, on-failure or no)", ErrBadUnit, name, u.Restart)
	}
	for _, a := range u.After {
		if !nameRE().MatchString(a) {
			return Unit{}, fmt.Errorf("%w: %s: after %q", ErrBadUnit, name, a)
		}
	}
	for k := range u.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return Unit{}, fmt.Errorf("%w: %s: env name %q", ErrBadUnit, name, k)
		}
	}
	return u, nil
}

// LoadUnits reads every NAME.yaml in dir and checks that dependencies
// exist and have no cycle. Units are returned sorted by name.
func LoadUnits(dir string) ([]Unit, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("supervise: %w", err)
	}
	var units []Unit
	for _, e := range ents {
		n := e.Name()
		ext := filepath.Ext(n)
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, fmt.Errorf("supervise: %w", err)
		}
		u, err := ParseUnit(strings.TrimSuffix(n, ext), b)
		if err != nil {
			return nil, err
		}
		units = append(units, u)
	}
	sort.Slice(units, func(i, j int) bool { return units[i].Name < units[j].Name })
	return units, CheckGraph(units)
}

// CheckGraph fails if a unit depends on a missing unit or on itself through a cycle.
func CheckGraph(units []Unit) error {
	by := map[string]Unit{}
	for _, u := range units {
		if _, dup := by[u.Name]; dup {
			return fmt.Errorf("%w: two units named %s", ErrBadUnit, u.Name)
		}
		by[u.Name] = u
	}
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(n string, path []string) error
	visit = func(n string, path []string) error {
		switch state[n] {
		case 1:
			return fmt.Errorf("%w: dependency cycle %s", ErrBadUnit, strings.Join(append(path, n), " -> "))
		case 2:
			return nil
		}
		state[n] = 1
		for _, a := range by[n].After {
			if _, ok := by[a]; !ok {
				return fmt.Errorf("%w: %s: after %q: no such service", ErrBadUnit, n, a)
			}
			if err := visit(a, append(path, n)); err != nil {
				return err
			}
		}
		state[n] = 2
		return nil
	}
	for _, u := range units {
		if err := visit(u.Name, nil); err != nil {
			return err
		}
	}
	return nil
}

// SplitCommand splits a command line into words: whitespace separates,
// single and double quotes group, backslash escapes. No variables, globs
// or operators: the words go straight to execve.
func SplitCommand(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool
		quote rune
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else if c == '\\' && quote == '"' && i+1 < len(rs) {
				i++
				cur.WriteRune(rs[i])
			} else {
				cur.WriteRune(c)
			}
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == '\\':
			if i+1 >= len(rs) {
				return nil, errors.New("trailing backslash")
			}
			i++
			cur.WriteRune(rs[i])
			in = true
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case c == 0:
			return nil, errors.New("NUL in command")
		default:
			cur.WriteRune(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if in {
		words = append(words, cur.String())
	}
	if len(words) == 0 {
		return nil, errors.New("empty command")
	}
	return words, nil
}
