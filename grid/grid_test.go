package grid

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zosgrid/zos/key"
)

var rewrite = flag.Bool("rewrite", false, "rewrite grid/testdata/hash_vectors.json from the current encoding")

const flistHash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func sampleDeployment() Deployment {
	return Deployment{
		Version: 1, TwinID: 7, ContractID: 99, Metadata: `{"type":"vm"}`, Description: "web",
		SignatureRequirement: SignatureRequirement{
			Requests:       []SignatureRequest{{TwinID: 7, Required: true, Weight: 1}},
			WeightRequired: 1,
		},
		Workloads: []Workload{
			{Version: 1, Name: "net", Type: TypeNetwork, Data: &Network{IPRange: "10.20.0.0/16", Subnet: "10.20.2.0/24", PrivateKey: "k", ListenPort: 5000}},
			{Version: 0, Name: "data", Type: TypeVolume, Data: &Volume{Size: 10 << 30}},
			{Version: 1, Name: "vm", Type: TypeZMachine, Data: &ZMachine{
				Flist: "https://hub/a.flist", FlistHash: flistHash, Network: "net", IP: "10.20.2.5",
				CPU: 2, Memory: 4 << 30, RootSize: 2 << 30, Env: map[string]string{"B": "2", "A": "1"},
				Mounts: []Mount{{Name: "data", Mountpoint: "/data"}}}},
			{Version: 1, Name: "db", Type: TypeZDB, Data: &ZDB{Size: 1 << 30, Mode: "user"}},
			{Version: 1, Name: "pub", Type: TypePublicIP, Data: &PublicIP{V4: true}},
		},
	}
}

func TestCapacity(t *testing.T) {
	d := sampleDeployment()
	got := d.Capacity()
	want := Capacity{CRU: 2, MRU: 4 << 30, SRU: 12 << 30, HRU: 1 << 30, IPV4U: 1}
	if got != want {
		t.Fatalf("capacity %+v, want %+v", got, want)
	}
	if !want.Fits(got) || want.Sub(Capacity{CRU: 3}).CRU != 0 || !(Capacity{CRU: 1}).Add(Capacity{CRU: 1}).Fits(Capacity{CRU: 2}) {
		t.Fatal("capacity arithmetic is wrong")
	}
}

// TestHashExcludes: the contract id, signatures and results do not change
// the hash; every signed field does.
func TestHashExcludes(t *testing.T) {
	d := sampleDeployment()
	h := d.Hash()
	d.ContractID = 1000
	d.SignatureRequirement.Signatures = []Signature{{TwinID: 7, Signature: []byte("x")}}
	d.Workloads[0].Result = &Result{State: "ok"}
	if d.Hash() != h {
		t.Fatal("contract id, signatures or results changed the hash")
	}
	mutations := map[string]func(*Deployment){
		"version":        func(d *Deployment) { d.Version++ },
		"twin":           func(d *Deployment) { d.TwinID++ },
		"metadata":       func(d *Deployment) { d.Metadata += " " },
		"flist hash":     func(d *Deployment) { d.Workloads[2].Data.(*ZMachine).FlistHash = strings.Repeat("0", 64) },
		"env":            func(d *Deployment) { d.Workloads[2].Data.(*ZMachine).Env["A"] = "2" },
		"weight":         func(d *Deployment) { d.SignatureRequirement.WeightRequired++ },
		"required":       func(d *Deployment) { d.SignatureRequirement.Requests[0].Required = false },
		"workload order": func(d *Deployment) { d.Workloads[0], d.Workloads[1] = d.Workloads[1], d.Workloads[0] },
		"zdb ssd":        func(d *Deployment) { d.Workloads[3].Data.(*ZDB).SSD = true },
	}
	for name, m := range mutations {
		d := sampleDeployment()
		m(&d)
		if d.Hash() == h {
			t.Errorf("%s: changing it did not change the hash", name)
		}
	}
}

// TestHashUnambiguous is the case the md5-over-concatenation hash gets
// wrong: version 1 with twin 23 and version 12 with twin 3, and strings
// that shift bytes between neighbouring fields.
func TestHashUnambiguous(t *testing.T) {
	a, b := sampleDeployment(), sampleDeployment()
	a.Version, a.TwinID = 1, 23
	b.Version, b.TwinID = 12, 3
	if a.Hash() == b.Hash() {
		t.Fatal("version/twin concatenation collides")
	}
	a, b = sampleDeployment(), sampleDeployment()
	a.Metadata, a.Description = "ab", "c"
	b.Metadata, b.Description = "a", "bc"
	if a.Hash() == b.Hash() {
		t.Fatal("metadata/description boundary collides")
	}
}

// TestEncodingByHand pins the layout with bytes written out by hand.
func TestEncodingByHand(t *testing.T) {
	d := Deployment{Version: 2, TwinID: 5, SignatureRequirement: SignatureRequirement{
		Requests: []SignatureRequest{{TwinID: 5, Required: true, Weight: 3}}, WeightRequired: 3}}
	var want bytes.Buffer
	u := func(v uint64) { binary.Write(&want, binary.BigEndian, v) }
	s := func(v string) { u(uint64(len(v))); want.WriteString(v) }
	s("zos-deployment-v1")
	u(2)
	u(5)
	s("")
	s("")
	u(0)
	u(1)
	u(5)
	u(1)
	u(3)
	u(3)
	if got := d.Encode(); !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("encoding\n got %x\nwant %x", got, want.Bytes())
	}
	if d.Hash() != sha256.Sum256(want.Bytes()) {
		t.Fatal("hash is not SHA-256 of the encoding")
	}
}

type vector struct {
	Name       string          `json:"name"`
	Deployment json.RawMessage `json:"deployment"`
	Hash       string          `json:"hash"`
}

// TestHashVectors replays testdata/hash_vectors.json: other implementations
// (clients in other languages) check themselves against the same file.
func TestHashVectors(t *testing.T) {
	path := filepath.Join("testdata", "hash_vectors.json")
	if *rewrite {
		var vs []vector
		for i, d := range []Deployment{sampleDeployment(), {Version: 0, TwinID: 1, SignatureRequirement: SignatureRequirement{
			Requests: []SignatureRequest{{TwinID: 1, Weight: 1}}, WeightRequired: 1}, Workloads: []Workload{}}} {
			b, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			vs = append(vs, vector{Name: fmt.Sprintf("vector-%d", i), Deployment: b, Hash: d.Hash().String()})
		}
		out, _ := json.MarshalIndent(vs, "", "  ")
		if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 2 {
		t.Fatal("too few vectors")
	}
	for _, v := range vs {
		d, err := DecodeDeployment(v.Deployment)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if got := d.Hash().String(); got != v.Hash {
			t.Errorf("%s: hash %s, want %s", v.Name, got, v.Hash)
		}
	}
}

type keyMap map[uint32]key.Private

func (m keyMap) TwinKey(id uint32) (TwinKey, error) {
	k, ok := m[id]
	if !ok {
		return TwinKey{}, fmt.Errorf("%w: %d", ErrUnknownTwin, id)
	}
	return NewTwinKey(k.Public()), nil
}

func testKey(t *testing.T, i byte) key.Private {
	t.Helper()
	k, err := key.FromSeed(bytes.Repeat([]byte{i}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVerifyMultisig(t *testing.T) {
	keys := keyMap{1: testKey(t, 1), 2: testKey(t, 2), 3: testKey(t, 3), 4: testKey(t, 4)}
	// Twin 3 owns the deployment and must sign; any one of twins 1 or 2 as well.
	base := func() Deployment {
		d := sampleDeployment()
		d.TwinID = 3
		d.SignatureRequirement = SignatureRequirement{
			Requests: []SignatureRequest{
				{TwinID: 3, Required: true, Weight: 1},
				{TwinID: 1, Weight: 1},
				{TwinID: 2, Weight: 1},
			},
			WeightRequired: 2,
		}
		return d
	}
	cases := []struct {
		name    string
		signers []uint32
		mutate  func(*Deployment)
		want    error
	}{
		{name: "owner and one of two", signers: []uint32{3, 1}},
		{name: "all three", signers: []uint32{3, 1, 2}},
		{name: "listed signer absent is fine", signers: []uint32{3, 2}},
		{name: "below threshold", signers: []uint32{3}, want: ErrUnauthorized},
		{name: "required missing", signers: []uint32{1, 2}, want: ErrUnauthorized},
		{name: "stranger signed", signers: []uint32{3, 1, 4}, want: ErrUnauthorized},
		{name: "forged signature", signers: []uint32{3, 1}, mutate: func(d *Deployment) {
			d.SignatureRequirement.Signatures[1].Signature[0] ^= 1
		}, want: ErrUnauthorized},
		{name: "signed then changed", signers: []uint32{3, 1}, mutate: func(d *Deployment) {
			d.Workloads[2].Data.(*ZMachine).CPU = 64
		}, want: ErrUnauthorized},
		{name: "duplicate signature", signers: []uint32{3, 1}, mutate: func(d *Deployment) {
			r := &d.SignatureRequirement
			r.Signatures = append(r.Signatures, r.Signatures[1])
		}, want: ErrUnauthorized},
		{name: "empty signature counts as absent only if not given", signers: []uint32{3, 1}, mutate: func(d *Deployment) {
			d.SignatureRequirement.Signatures = append(d.SignatureRequirement.Signatures, Signature{TwinID: 2})
		}, want: ErrUnauthorized},
		{name: "unknown key", signers: []uint32{3, 1}, mutate: func(d *Deployment) {
			delete(keys, 1)
		}, want: ErrUnknownTwin},
		{name: "owner not requested", signers: []uint32{1, 2}, mutate: func(d *Deployment) {
			d.SignatureRequirement.Requests = d.SignatureRequirement.Requests[1:]
		}, want: ErrInvalid},
		{name: "zero threshold", signers: []uint32{3}, mutate: func(d *Deployment) {
			d.SignatureRequirement.WeightRequired = 0
		}, want: ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			keys[1] = testKey(t, 1)
			d := base()
			for _, s := range c.signers {
				d.Sign(s, keys[s])
			}
			if c.mutate != nil {
				c.mutate(&d)
			}
			v, err := Verify(d, keys)
			if c.want == nil {
				if err != nil {
					t.Fatalf("want verified, got %v", err)
				}
				if v.Hash() != d.Hash() || v.Value().TwinID != 3 || len(v.Signers()) != len(c.signers) {
					t.Fatalf("verified value is wrong: %v signers %v", v.Hash(), v.Signers())
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("want %v, got %v", c.want, err)
			}
		})
	}
}

func TestValidateName(t *testing.T) {
	good := []string{"a", "web1", "my_vm", "a-b", strings.Repeat("x", 36)}
	bad := []string{"", "_a", "-a", "A", "a.b", "a/b", "a b", "../x", strings.Repeat("x", 37), "é"}
	for _, n := range good {
		if err := ValidateName(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
	for _, n := range bad {
		if err := ValidateName(n); !errors.Is(err, ErrInvalidName) {
			t.Errorf("%q: want ErrInvalidName, got %v", n, err)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	cases := map[string]string{
		"not json":       `{`,
		"unknown type":   `{"twin_id":1,"signature_requirement":{"requests":[{"twin_id":1,"weight":1}],"weight_required":1},"workloads":[{"name":"a","type":"teleport","data":{}}]}`,
		"no data":        `{"twin_id":1,"signature_requirement":{"requests":[{"twin_id":1,"weight":1}],"weight_required":1},"workloads":[{"name":"a","type":"volume"}]}`,
		"zero volume":    `{"twin_id":1,"signature_requirement":{"requests":[{"twin_id":1,"weight":1}],"weight_required":1},"workloads":[{"name":"a","type":"volume","data":{"size":0}}]}`,
		"dup names":      `{"twin_id":1,"signature_requirement":{"requests":[{"twin_id":1,"weight":1}],"weight_required":1},"workloads":[{"name":"a","type":"volume","data":{"size":1}},{"name":"a","type":"disk","data":{"size":1}}]}`,
		"newer workload": `{"twin_id":1,"signature_requirement":{"requests":[{"twin_id":1,"weight":1}],"weight_required":1},"workloads":[{"version":2,"name":"a","type":"volume","data":{"size":1}}]}`,
		"no flist hash":  `{"twin_id":1,"signature_requirement":{"requests":[{"twin_id":1,"weight":1}],"weight_required":1},"workloads":[{"name":"a","type":"zmachine","data":{"flist":"x","cpu":1,"memory":1}}]}`,
		"no twin":        `{"signature_requirement":{"requests":[{"twin_id":1,"weight":1}],"weight_required":1},"workloads":[]}`,
	}
	for name, in := range cases {
		if _, err := DecodeDeployment([]byte(in)); !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrInvalidName) {
			t.Errorf("%s: want ErrInvalid, got %v", name, err)
		}
	}
}

// FuzzDecodeDeployment: a decoded deployment re-encodes to JSON that decodes
// to the same hash, and decoding never panics.
func FuzzDecodeDeployment(f *testing.F) {
	d := sampleDeployment()
	b, _ := json.Marshal(d)
	f.Add(b)
	f.Add([]byte(`{"twin_id":1,"signature_requirement":{"requests":[{"twin_id":1,"weight":1}],"weight_required":1},"workloads":[]}`))
	f.Add([]byte(`{"twin_id":1,"workloads":[{"name":"g","type":"gateway-name-proxy","data":{"name":"g","backends":["1.2.3.4:80"]}}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		d, err := DecodeDeployment(in)
		if err != nil {
			return
		}
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		d2, err := DecodeDeployment(out)
		if err != nil {
			t.Fatalf("re-decode: %v\n%s", err, out)
		}
		if d.Hash() != d2.Hash() {
			t.Fatalf("hash changed across a JSON round trip:\n%s", out)
		}
	})
}
