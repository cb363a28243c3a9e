package key

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sub", "id.key")
	if err := Save(path, p); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	q, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if q.Public() != p.Public() {
		t.Fatal("loaded key differs from saved key")
	}
	msg := []byte("deployment")
	if !q.Public().Verify(msg, p.Sign(msg)) {
		t.Fatal("signature by saved key does not verify with loaded key")
	}
}

func TestSaveRefusesOverwrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id.key")
	p, _ := New()
	if err := Save(path, p); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	q, _ := New()
	if err := Save(path, q); err == nil {
		t.Fatal("Save overwrote an existing key file")
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("existing key file changed")
	}
}

func TestVerifyRejectsForgery(t *testing.T) {
	p, _ := New()
	other, _ := New()
	msg := []byte("pay 10")
	sig := p.Sign(msg)
	cases := map[string]struct {
		pub Public
		msg []byte
		sig []byte
	}{
		"other key":     {other.Public(), msg, sig},
		"changed msg":   {p.Public(), []byte("pay 11"), sig},
		"truncated sig": {p.Public(), msg, sig[:10]},
		"flipped bit":   {p.Public(), msg, append(append([]byte{}, sig[:63]...), sig[63]^1)},
	}
	for name, c := range cases {
		if c.pub.Verify(c.msg, c.sig) {
			t.Errorf("%s: forged signature verified", name)
		}
	}
}

func TestParsePublic(t *testing.T) {
	p, _ := New()
	pub := p.Public()
	for _, s := range []string{pub.String(), pub.String()[len("ed25519:"):], " " + pub.String() + "\n"} {
		got, err := ParsePublic(s)
		if err != nil || got != pub {
			t.Errorf("ParsePublic(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "ed25519:", "ed25519:zz", pub.String()[:20]} {
		if _, err := ParsePublic(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParsePublic(%q) error = %v, want ErrInvalid", s, err)
		}
	}
}

func TestLoadRejectsGarbage(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"empty":    "",
		"noprefix": "00112233",
		"nothex":   privatePrefix + "xyz",
		"short":    privatePrefix + "0011",
	} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(content), 0o600)
		if _, err := Load(path); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Load error = %v, want ErrInvalid", name, err)
		}
	}
}

func TestParseAccount(t *testing.T) {
	p, _ := New()
	path := filepath.Join(t.TempDir(), "alice.key")
	if err := Save(path, p); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{p.Public().String(), path} {
		if got, err := ParseAccount(s); err != nil || got != p.Public() {
			t.Errorf("ParseAccount(%q) = %v, %v; want %v", s, got, err, p.Public())
		}
	}
	if _, err := ParseAccount(filepath.Join(t.TempDir(), "missing.key")); err == nil {
		t.Error("ParseAccount of a missing file and no key: no error")
	}
}
