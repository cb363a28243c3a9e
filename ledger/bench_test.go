package ledger

import (
	"testing"

	"github.com/zosgrid/zos/grid"
)

func BenchmarkCheckTx(b *testing.B) {
	keys := testKeys(2)
	m, _ := New(testGenesis(keys))
	tx, _ := NewTx("test", keys[0], 0, &Transfer{To: keys[1].Public(), Amount: 1})
	b.ResetTimer()
	for range b.N {
		if _, err := m.CheckTx(tx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApplyTransfers(b *testing.B) {
	keys := testKeys(2)
	m, _ := New(testGenesis(keys))
	var txs [][]byte
	for i := range b.N {
		tx, _ := NewTx("test", keys[0], uint64(i), &Transfer{To: keys[1].Public(), Amount: 1})
		txs = append(txs, tx)
	}
	b.ResetTimer()
	for i := 0; i < len(txs); i += 1000 {
		res, _ := m.ApplyBlock(m.Height()+1, txs[i:min(i+1000, len(txs))])
		if res.Txs[0].Code != 0 {
			b.Fatal(res.Txs[0].Log)
		}
	}
}

func BenchmarkBillContract(b *testing.B) {
	keys := testKeys(1)
	m, _ := New(testGenesis(keys))
	s := m.s
	tw := &Twin{ID: 1, Account: keys[0].Public()}
	s.twins[1] = tw
	s.farms[1] = &Farm{ID: 1}
	s.nodes[1] = &Node{ID: 1, Farm: 1, LastSeen: 1, Resources: grid.Capacity{CRU: 1 << 20, MRU: 1 << 50}}
	c := &Contract{ID: 1, Twin: 1, Type: NodeContract, State: StateCreated, Node: 1, Used: grid.Capacity{CRU: 2, MRU: 4 << 30, SRU: 100 << 30}}
	s.contracts[1] = c
	var evs []Event
	b.ResetTimer()
	for range b.N {
		s.height++
		s.nodes[1].LastSeen = s.height
		c.UnbilledNU = 1000
		s.billContract(c, &evs)
		evs = evs[:0]
		if len(s.dirty) > 1000 {
			s.commitHash()
		}
	}
}

// BenchmarkApplyChecked is the validator's path: CheckTx admitted the
// transactions (not timed), the block applies them.
func BenchmarkApplyChecked(b *testing.B) {
	keys := testKeys(2)
	m, _ := New(testGenesis(keys))
	var txs [][]byte
	for i := range b.N {
		tx, _ := NewTx("test", keys[0], uint64(i), &Transfer{To: keys[1].Public(), Amount: 1})
		txs = append(txs, tx)
	}
	b.ResetTimer()
	for i := 0; i < len(txs); i += 1000 {
		block := txs[i:min(i+1000, len(txs))]
		b.StopTimer()
		for _, tx := range block {
			if _, err := m.CheckTx(tx); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		res, _ := m.ApplyBlock(m.Height()+1, block)
		if res.Txs[0].Code != 0 {
			b.Fatal(res.Txs[0].Log)
		}
	}
}
