package ledger

import (
	"testing"
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
