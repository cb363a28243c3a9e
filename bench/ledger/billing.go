package main

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/zosgrid/zos/grid"
	"github.com/zosgrid/zos/key"
	"github.com/zosgrid/zos/ledger"
)

// billingRun creates n node contracts with reported usage on 100 nodes and
// times the blocks of one billing cycle (every contract billed once).
func billingRun(n int) error {
	const cycle = 10
	const users, nodes = 100, 100
	seed := func(s string, i int) key.Private {
		b := sha256.Sum256(binary.BigEndian.AppendUint64([]byte(s), uint64(i)))
		k, _ := key.FromSeed(b[:])
		return k
	}
	var userKeys, nodeKeys []key.Private
	g := ledger.Genesis{ChainID: "bench", Params: ledger.DefaultParams(), Treasury: seed("treasury", 0).Public()}
	g.Params.BillingFrequency = cycle
	g.Params.BlockSeconds = 360
	for i := range users {
		userKeys = append(userKeys, seed("user", i))
		g.Balances = append(g.Balances, ledger.GenesisBalance{Account: userKeys[i].Public(), Amount: 1e15})
	}
	farmer := seed("farmer", 0)
	g.Balances = append(g.Balances, ledger.GenesisBalance{Account: farmer.Public(), Amount: 1e12})
	for i := range nodes {
		nodeKeys = append(nodeKeys, seed("node", i))
		g.Balances = append(g.Balances, ledger.GenesisBalance{Account: nodeKeys[i].Public(), Amount: 1e12})
	}
	m, err := ledger.New(g)
	if err != nil {
		return err
	}
	apply := func(txs [][]byte) error {
		res, err := m.ApplyBlock(m.Height()+1, txs)
		if err != nil {
			return err
		}
		for _, r := range res.Txs {
			if r.Code != 0 {
				return fmt.Errorf("setup tx failed: %s", r.Log)
			}
		}
		return nil
	}
	nonces := map[key.Public]uint64{}
	tx := func(k key.Private, msg ledger.Msg) []byte {
		b, _ := ledger.NewTx("bench", k, nonces[k.Public()], msg)
		nonces[k.Public()]++
		return b
	}
	fmt.Fprintf(os.Stderr, "setting up %d contracts\n", n)
	var txs [][]byte
	for _, k := range append(append([]key.Private{farmer}, userKeys...), nodeKeys...) {
		txs = append(txs, tx(k, &ledger.TwinCreate{}))
	}
	if err := apply(txs); err != nil {
		return err
	}
	if err := apply([][]byte{tx(farmer, &ledger.FarmCreate{Name: "farm"})}); err != nil {
		return err
	}
	txs = nil
	for _, k := range nodeKeys {
		txs = append(txs, tx(k, &ledger.NodeRegister{Farm: 1, Resources: grid.Capacity{CRU: 1 << 20, MRU: 1 << 50, SRU: 1 << 55}}))
	}
	if err := apply(txs); err != nil {
		return err
	}
	used := grid.Capacity{CRU: 2, MRU: 4 << 30, SRU: 100 << 30}
	perBlock := 10_000
	for start := 0; start < n; start += perBlock {
		end := min(start+perBlock, n)
		type job struct {
			k     key.Private
			nonce uint64
			msg   ledger.Msg
		}
		var jobs []job
		for i := start; i < end; i++ {
			k := userKeys[i%users]
			h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i)))
			jobs = append(jobs, job{k, nonces[k.Public()], &ledger.CreateNodeContract{Node: uint32(1 + i%nodes), Hash: h, Capacity: used}})
			nonces[k.Public()]++
		}
		txs = make([][]byte, len(jobs))
		var wg sync.WaitGroup
		step := (len(jobs) + runtime.NumCPU() - 1) / runtime.NumCPU()
		for lo := 0; lo < len(jobs); lo += step {
			wg.Add(1)
			go func(lo, hi int) {
				defer wg.Done()
				for j := lo; j < hi; j++ {
					txs[j], _ = ledger.NewTx("bench", jobs[j].k, jobs[j].nonce, jobs[j].msg)
				}
			}(lo, min(lo+step, len(jobs)))
		}
		wg.Wait()
		if err := apply(txs); err != nil {
			return err
		}
	}
	// Each node reports the usage of its contracts.
	txs = nil
	for ni, k := range nodeKeys {
		var reps []ledger.ContractReport
		for id := uint64(ni + 1); id <= uint64(n); id += nodes {
			reps = append(reps, ledger.ContractReport{Contract: id, Used: used, NetBytes: 1e9})
			if len(reps) == 400 { // keeps the transaction under ledger.MaxTxSize
				txs = append(txs, tx(k, &ledger.NodeReport{Reports: reps}))
				reps = nil
			}
		}
		if len(reps) > 0 {
			txs = append(txs, tx(k, &ledger.NodeReport{Reports: reps}))
		}
	}
	if err := apply(txs); err != nil {
		return err
	}
	// Skip to the start of a cycle, then time one full cycle of empty blocks.
	for m.Height()%cycle != cycle-1 {
		if err := apply(nil); err != nil {
			return err
		}
	}
	var billed int
	var worst time.Duration
	start := time.Now()
	for range cycle {
		t := time.Now()
		res, err := m.ApplyBlock(m.Height()+1, nil)
		if err != nil {
			return err
		}
		worst = max(worst, time.Since(t))
		billed += len(res.Events)
	}
	total := time.Since(start)
	fmt.Println("| billing | contracts billed | cycle (blocks) | time for the cycle | slowest block | per contract |")
	fmt.Println("| --- | --- | --- | --- | --- | --- |")
	fmt.Printf("| node contracts with reported CU/SU/NU | %d | %d | %v | %v | %v |\n", billed, cycle, total.Round(time.Millisecond),
		worst.Round(time.Millisecond), (total / time.Duration(max(billed, 1))).Round(time.Microsecond/10))
	if billed < n {
		return fmt.Errorf("only %d of %d contracts were billed", billed, n)
	}
	return nil
}
