package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/zosgrid/zos/grid"
	"github.com/zosgrid/zos/key"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of ledger/testdata/*.txt")

// TestScenarios replays every testdata/*.txt script through a fresh machine
// and compares each command's output with the expected text under it. The
// scripts' comments carry the hand computations the outputs must match;
// `go test ./ledger -run Scenarios -rewrite` regenerates the outputs (then
// read the diff against the comments).
//
// Script format: a command line, a "----" line, the expected output, a blank
// line. Lines starting with # are comments. Commands:
//
//	genesis k=v... fund=NAME:AMOUNT...   billing_frequency, block_seconds, grace_period, node_offline, cu, su, nu, ipv4, name, dedicated, fee
//	tx NAME [nonce=N] [badsig] [signer=OTHER] TYPE JSON   queue a transaction ("@name" in JSON is that name's key, "#x" a hash of x)
//	block                                                 apply the queued transactions as the next block
//	blocks N                                              apply N empty blocks and print their events
//	balance NAME... | contract ID | bills ID | node ID | proposal ID | farm ID | nodes k=v...
func TestScenarios(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if len(files) == 0 {
		t.Fatal("no scenarios in testdata")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runScenario(t, f) })
	}
}

type scenario struct {
	t       *testing.T
	m       *Machine
	chainID string
	keys    map[string]key.Private
	names   map[key.Public]string
	nonces  map[string]uint64
	pending [][]byte
}

func nameKey(name string) key.Private {
	seed := sha256.Sum256([]byte("scenario:" + name))
	k, _ := key.FromSeed(seed[:])
	return k
}

func (sc *scenario) key(name string) key.Private {
	k, ok := sc.keys[name]
	if !ok {
		k = nameKey(name)
		sc.keys[name] = k
		sc.names[k.Public()] = name
	}
	return k
}

var refRE = regexp.MustCompile(`@[a-z0-9_]+|#[a-z0-9_]+`)

func (sc *scenario) expand(s string) string {
	return refRE.ReplaceAllStringFunc(s, func(r string) string {
		if r[0] == '@' {
			if g, ok := strings.CutPrefix(r, "@group"); ok {
				id, _ := strconv.Atoi(g)
				acct := GroupAccount(uint32(id))
				sc.names[acct] = r[1:]
				return acct.String()
			}
			return sc.key(r[1:]).Public().String()
		}
		h := grid.Hash(sha256.Sum256([]byte(r[1:])))
		return h.String()
	})
}

// show replaces account keys by their scenario names.
func (sc *scenario) show(s string) string {
	for pub, n := range sc.names {
		s = strings.ReplaceAll(s, pub.String(), "@"+n)
	}
	return s
}

func runScenario(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := &scenario{t: t, keys: map[string]key.Private{}, names: map[key.Public]string{}, nonces: map[string]uint64{}}
	var out strings.Builder
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			out.WriteString(line + "\n")
			continue
		}
		cmd := line
		var want []string
		if i+1 < len(lines) && lines[i+1] == "----" {
			i += 2
			for ; i < len(lines) && lines[i] != ""; i++ {
				want = append(want, lines[i])
			}
		}
		got := sc.run(cmd)
		out.WriteString(cmd + "\n----\n" + got + "\n\n")
		if !*rewrite && got != strings.Join(want, "\n") {
			t.Errorf("%s: %q\n got:\n%s\nwant:\n%s", path, cmd, got, strings.Join(want, "\n"))
		}
	}
	if *rewrite {
		if err := os.WriteFile(path, []byte(strings.TrimRight(out.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (sc *scenario) run(cmd string) string {
	t := sc.t
	f := strings.Fields(cmd)
	switch f[0] {
	case "genesis":
		g := Genesis{ChainID: "scenario", Params: Params{BlockSeconds: 360, BillingFrequency: 10, GracePeriod: 20, NodeOffline: 100, Pricing: DefaultPricing()},
			Treasury: sc.key("treasury").Public()}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			if k == "fund" {
				name, amt, _ := strings.Cut(v, ":")
				n, _ := strconv.ParseUint(amt, 10, 64)
				g.Balances = append(g.Balances, GenesisBalance{Account: sc.key(name).Public(), Amount: n})
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				t.Fatalf("genesis %s: %v", kv, err)
			}
			p := &g.Params
			switch k {
			case "billing_frequency":
				p.BillingFrequency = n
			case "block_seconds":
				p.BlockSeconds = n
			case "grace_period":
				p.GracePeriod = n
			case "node_offline":
				p.NodeOffline = n
			case "cu":
				p.Pricing.CU = n
			case "su":
				p.Pricing.SU = n
			case "nu":
				p.Pricing.NU = n
			case "ipv4":
				p.Pricing.IPv4 = n
			case "name":
				p.Pricing.UniqueName = n
			case "dedicated":
				p.Pricing.DedicatedDiscountPercent = n
			case "fee":
				p.TxFee = n
			default:
				t.Fatalf("genesis: unknown %s", k)
			}
		}
		m, err := New(g)
		if err != nil {
			return "error " + err.Error()
		}
		sc.m, sc.chainID = m, g.ChainID
		return "ok"
	case "tx":
		rest := strings.TrimPrefix(cmd, "tx ")
		name, rest, _ := strings.Cut(rest, " ")
		k := sc.key(name)
		acct, _ := sc.m.Account(k.Public())
		nonce, explicit, badsig := acct.Nonce+sc.nonces[name], false, false
		signer := k.Public()
		for {
			word, after, _ := strings.Cut(rest, " ")
			switch {
			case strings.HasPrefix(word, "nonce="):
				n, _ := strconv.ParseUint(strings.TrimPrefix(word, "nonce="), 10, 64)
				nonce, explicit = n, true
			case word == "badsig":
				badsig = true
			case strings.HasPrefix(word, "signer="):
				signer = sc.key(strings.TrimPrefix(word, "signer=")).Public()
			default:
				goto done
			}
			rest = after
		}
	done:
		typ, body, _ := strings.Cut(rest, " ")
		tx := Tx{Signer: signer, Nonce: nonce, Type: typ, Msg: json.RawMessage(sc.expand(body))}
		tx.Sig = k.Sign(tx.SignBytes(sc.chainID))
		if badsig {
			tx.Sig[0] ^= 0xff
		}
		raw, err := json.Marshal(tx)
		if err != nil {
			return "error " + err.Error()
		}
		if !explicit && !badsig && signer == k.Public() {
			sc.nonces[name]++ // pending in this block
		}
		sc.pending = append(sc.pending, raw)
		return fmt.Sprintf("queued %d", len(sc.pending)-1)
	case "block":
		res, err := sc.m.ApplyBlock(sc.m.Height()+1, sc.pending)
		sc.pending = nil
		clear(sc.nonces)
		if err != nil {
			return "error " + err.Error()
		}
		var lines []string
		for i, r := range res.Txs {
			if r.Code != 0 {
				lines = append(lines, fmt.Sprintf("h%d tx%d error %d: %s", res.Height, i, r.Code, sc.show(r.Log)))
				continue
			}
			l := fmt.Sprintf("h%d tx%d ok", res.Height, i)
			if r.Created != 0 {
				l += fmt.Sprintf(" created=%d", r.Created)
			}
			lines = append(lines, l+eventsText(r.Events))
		}
		if len(res.Events) > 0 {
			lines = append(lines, fmt.Sprintf("h%d billing%s", res.Height, eventsText(res.Events)))
		}
		return strings.Join(lines, "\n")
	case "blocks":
		n, _ := strconv.Atoi(f[1])
		var lines []string
		for range n {
			res, err := sc.m.ApplyBlock(sc.m.Height()+1, nil)
			if err != nil {
				return "error " + err.Error()
			}
			if len(res.Events) > 0 {
				lines = append(lines, fmt.Sprintf("h%d billing%s", res.Height, eventsText(res.Events)))
			}
		}
		lines = append(lines, fmt.Sprintf("height %d", sc.m.Height()))
		return strings.Join(lines, "\n")
	case "balance":
		var parts []string
		for _, n := range f[1:] {
			acct := sc.key(n).Public()
			if g, ok := strings.CutPrefix(n, "group"); ok {
				id, _ := strconv.Atoi(g)
				acct = GroupAccount(uint32(id))
			}
			a, _ := sc.m.Account(acct)
			parts = append(parts, fmt.Sprintf("%s=%d", n, a.Balance))
		}
		return strings.Join(parts, " ")
	case "contract":
		id, _ := strconv.ParseUint(f[1], 10, 64)
		c, ok := sc.m.Contract(id)
		if !ok {
			return "not found"
		}
		return sc.jsonLine(c)
	case "bills":
		id, _ := strconv.ParseUint(f[1], 10, 64)
		var lines []string
		for _, b := range sc.m.Bills(id) {
			lines = append(lines, sc.jsonLine(b))
		}
		if len(lines) == 0 {
			return "none"
		}
		return strings.Join(lines, "\n")
	case "node":
		id, _ := strconv.ParseUint(f[1], 10, 32)
		n, ok := sc.m.Node(uint32(id))
		if !ok {
			return "not found"
		}
		return sc.jsonLine(struct {
			ID       uint32        `json:"id"`
			Used     grid.Capacity `json:"used"`
			Free     grid.Capacity `json:"free"`
			Online   bool          `json:"online"`
			RentedBy uint32        `json:"rented_by"`
		}{n.ID, n.Used, n.Free, n.Online, n.RentedBy})
	case "farm":
		id, _ := strconv.ParseUint(f[1], 10, 32)
		fm, ok := sc.m.Farm(uint32(id))
		if !ok {
			return "not found"
		}
		return sc.jsonLine(fm)
	case "proposal":
		id, _ := strconv.ParseUint(f[1], 10, 64)
		p, ok := sc.m.Proposal(id)
		if !ok {
			return "not found"
		}
		p.Action.Msg = nil
		return sc.jsonLine(p)
	case "nodes":
		var nf NodeFilter
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseUint(v, 10, 64)
			switch k {
			case "farm":
				nf.Farm = uint32(n)
			case "country":
				nf.Country = v
			case "online":
				b := v == "true"
				nf.Online = &b
			case "cru":
				nf.MinFree.CRU = n
			case "mru_gb":
				nf.MinFree.MRU = n << 30
			case "sru_gb":
				nf.MinFree.SRU = n << 30
			case "ips":
				nf.MinFree.IPV4U = n
			case "renter":
				nf.RentedBy = uint32(n)
			}
		}
		var ids []string
		for _, n := range sc.m.Nodes(nf) {
			ids = append(ids, strconv.Itoa(int(n.ID)))
		}
		return "nodes [" + strings.Join(ids, " ") + "]"
	case "apphash":
		return hex.EncodeToString(sc.m.AppHash())[:16]
	}
	t.Fatalf("unknown command %q", cmd)
	return ""
}

func (sc *scenario) jsonLine(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		sc.t.Fatal(err)
	}
	return sc.show(string(b))
}

func eventsText(evs []Event) string {
	var b strings.Builder
	for _, e := range evs {
		var kv []string
		if e.Contract != 0 {
			kv = append(kv, fmt.Sprintf("c=%d", e.Contract))
		}
		if e.Node != 0 {
			kv = append(kv, fmt.Sprintf("n=%d", e.Node))
		}
		if e.Twin != 0 {
			kv = append(kv, fmt.Sprintf("t=%d", e.Twin))
		}
		if e.Amount != 0 {
			kv = append(kv, fmt.Sprintf("amount=%d", e.Amount))
		}
		sort.Strings(kv)
		fmt.Fprintf(&b, " %s(%s)", e.Type, strings.Join(kv, " "))
	}
	return b.String()
}
