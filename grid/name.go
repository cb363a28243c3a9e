package grid

import (
	"errors"
	"fmt"
)

// ErrInvalidName is returned for names that are not safe identifiers.
var ErrInvalidName = errors.New("grid: invalid name")

// MaxNameLen is the longest name ValidateName accepts.
const MaxNameLen = 36

// ValidateName checks a workload, namespace, network namespace or gateway
// name: 1 to 36 characters from a-z, 0-9, '_' and '-', starting with a
// letter or digit. Names built this way are safe as path components,
// interface name parts and DNS labels (gateway names use only lower case).
func ValidateName(name string) error {
	if len(name) == 0 {
		return fmt.Errorf("%w: empty", ErrInvalidName)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: %q is longer than %d characters", ErrInvalidName, name, MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return fmt.Errorf("%w: %q: character %d (%q) is not one of a-z 0-9 _ - (and _ - not first)", ErrInvalidName, name, i, c)
		}
	}
	return nil
}
