package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zosgrid/zos/internal/freeport"
	"github.com/zosgrid/zos/key"
	"github.com/zosgrid/zos/ledger"
)

func main() {
	dur := flag.Duration("duration", 10*time.Second, "load time per run")
	runs := flag.Int("runs", 1, "runs per configuration (the median is reported)")
	workers := flag.Int("workers", 8, "concurrent senders")
	configs := flag.String("timeouts", "1s,100ms", "timeout_commit values to compare")
	contracts := flag.Int("contracts", 100_000, "contracts billed in one cycle")
	skipTPS := flag.Bool("skip-tps", false, "only measure billing")
	flag.Parse()
	if err := run(*dur, *runs, *workers, strings.Split(*configs, ","), *contracts, *skipTPS); err != nil {
		fmt.Fprintln(os.Stderr, "bench/ledger:", err)
		os.Exit(1)
	}
}

func run(dur time.Duration, runs, workers int, timeouts []string, contracts int, skipTPS bool) error {
	tmp, err := os.MkdirTemp("", "bench-ledger-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fmt.Println("## bench/ledger (one validator on loopback; the machine may be busy)")
	fmt.Println()
	if !skipTPS {
		zos := os.Getenv("ZOS_BIN")
		if zos == "" {
			zos = "bin/zos"
		}
		if _, err := os.Stat(zos); err != nil {
			return fmt.Errorf("zos binary %s: %w (run make build or set ZOS_BIN)", zos, err)
		}
		fmt.Fprintln(os.Stderr, "building cometbft v1.0.1 (kvstore) into", tmp)
		build := exec.Command("go", "install", "github.com/cometbft/cometbft/cmd/cometbft@v1.0.1")
		build.Env = append(os.Environ(), "GOBIN="+tmp)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build cometbft: %w", err)
		}
		fmt.Println("| timeout_commit | kvstore tx/s | zos tx/s (signed transfers) | ratio | kvstore block time | zos block time | zos txs applied ok |")
		fmt.Println("| --- | --- | --- | --- | --- | --- | --- |")
		for _, tc := range timeouts {
			var kv, zs []result
			for r := range runs {
				k, err := kvstoreRun(tmp, filepath.Join(tmp, "cometbft"), tc, r, workers, dur)
				if err != nil {
					return fmt.Errorf("kvstore %s: %w", tc, err)
				}
				kv = append(kv, k)
				z, err := zosRun(tmp, zos, tc, r, workers, dur)
				if err != nil {
					return fmt.Errorf("zos %s: %w", tc, err)
				}
				zs = append(zs, z)
			}
			k, z := median(kv), median(zs)
			fmt.Printf("| %s | %.0f | %.0f | %.2f× | %.3fs | %.3fs | %d |\n", tc, k.tps, z.tps, z.tps/k.tps, k.blockTime, z.blockTime, z.okTxs)
		}
		fmt.Println()
	}
	return billingRun(contracts)
}

type result struct {
	tps       float64
	blockTime float64
	okTxs     uint64
}

func median(rs []result) result {
	slices.SortFunc(rs, func(a, b result) int {
		switch {
		case a.tps < b.tps:
			return -1
		case a.tps > b.tps:
			return 1
		}
		return 0
	})
	return rs[len(rs)/2]
}

// reservePorts holds n loopback ports for one node (no other process is
// given them meanwhile, see internal/freeport) and returns their host:port
// addresses and the function that releases them once the node has stopped.
func reservePorts(n int) ([]string, func(), error) {
	var held []*freeport.Reservation
	release := func() {
		for _, r := range held {
			r.Release()
		}
	}
	var addrs []string
	for range n {
		r, err := freeport.Reserve("127.0.0.1", 0)
		if err != nil {
			release()
			return nil, nil, err
		}
		held = append(held, r)
		addrs = append(addrs, r.Addr())
	}
	return addrs, release, nil
}

func kvstoreRun(tmp, bin, timeout string, runIdx, workers int, dur time.Duration) (result, error) {
	home := filepath.Join(tmp, fmt.Sprintf("kv-%s-%d", timeout, runIdx))
	if out, err := exec.Command(bin, "init", "--home", home).CombinedOutput(); err != nil {
		return result{}, fmt.Errorf("init: %v: %s", err, out)
	}
	cfgPath := filepath.Join(home, "config", "config.toml")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return result{}, err
	}
	b = []byte(strings.Replace(string(b), `timeout_commit = "1s"`, fmt.Sprintf("timeout_commit = %q", timeout), 1))
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		return result{}, err
	}
	ports, release, err := reservePorts(2)
	if err != nil {
		return result{}, err
	}
	defer release()
	rpc := ports[0]
	cmd := exec.Command(bin, "node", "--home", home, "--proxy_app=kvstore", "--rpc.laddr", "tcp://"+rpc,
		"--p2p.laddr", "tcp://"+ports[1], "--log_level", "error")
	stop, err := startProc(cmd)
	if err != nil {
		return result{}, err
	}
	defer stop()
	gen := func(w int) func(seq int) []byte {
		return func(seq int) []byte { return []byte(fmt.Sprintf("r%dw%dn%d=v", runIdx, w, seq)) }
	}
	return load(rpc, workers, dur, gen)
}

func zosRun(tmp, bin, timeout string, runIdx, workers int, dur time.Duration) (result, error) {
	home := filepath.Join(tmp, fmt.Sprintf("zos-%s-%d", timeout, runIdx))
	var keys []key.Private
	args := []string{"ledger", "init", "--home", home, "--timeout-commit", timeout, "--chain-id", "bench"}
	for range workers {
		k, err := key.New()
		if err != nil {
			return result{}, err
		}
		keys = append(keys, k)
		args = append(args, "--fund", k.Public().String()+"=1000000000000")
	}
	ports, release, err := reservePorts(3)
	if err != nil {
		return result{}, err
	}
	defer release()
	rpc := ports[0]
	args = append(args, "--rpc", "tcp://"+rpc, "--p2p", "tcp://"+ports[1], "--http", ports[2])
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		return result{}, fmt.Errorf("init: %v: %s", err, out)
	}
	// Pre-sign more transfers than the run can commit (at most 25k/s).
	perWorker := int(dur.Seconds()*25_000)/workers + 1000
	fmt.Fprintf(os.Stderr, "signing %d transfers\n", perWorker*workers)
	txs := make([][][]byte, workers)
	var wg sync.WaitGroup
	to := keys[0].Public()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range perWorker {
				tx, _ := ledger.NewTx("bench", keys[w], uint64(n), &ledger.Transfer{To: to, Amount: 1})
				txs[w] = append(txs[w], tx)
			}
		}()
	}
	wg.Wait()
	httpAddr := ""
	if b, err := os.ReadFile(filepath.Join(home, "ledger.json")); err == nil {
		var s struct {
			HTTP string `json:"http"`
		}
		json.Unmarshal(b, &s)
		httpAddr = s.HTTP
	}
	stop, err := startProc(exec.Command(bin, "ledger", "start", "--home", home, "--http", httpAddr))
	if err != nil {
		return result{}, err
	}
	defer stop()
	gen := func(w int) func(seq int) []byte {
		return func(seq int) []byte {
			if seq >= len(txs[w]) {
				return nil
			}
			return txs[w][seq]
		}
	}
	res, err := load(rpc, workers, dur, gen)
	if err != nil {
		return res, err
	}
	for _, k := range keys {
		var a struct {
			Nonce uint64 `json:"nonce"`
		}
		if err := getJSON("http://"+httpAddr+"/accounts/"+k.Public().String(), &a); err == nil {
			res.okTxs += a.Nonce
		}
	}
	return res, nil
}

func startProc(cmd *exec.Cmd) (func(), error) {
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}, nil
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}

func getJSON(url string, out any) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

type rpcResp[T any] struct {
	Result T `json:"result"`
	Error  *struct {
		Message string `json:"message"`
		Data    string `json:"data"`
	} `json:"error"`
}

func height(rpc string) (int64, error) {
	var r rpcResp[struct {
		SyncInfo struct {
			Height string `json:"latest_block_height"`
		} `json:"sync_info"`
	}]
	if err := getJSON("http://"+rpc+"/status", &r); err != nil {
		return 0, err
	}
	var h int64
	_, err := fmt.Sscan(r.Result.SyncInfo.Height, &h)
	return h, err
}

// load runs the senders for dur and measures what was committed.
func load(rpc string, workers int, dur time.Duration, gen func(w int) func(seq int) []byte) (result, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if h, err := height(rpc); err == nil && h >= 2 {
			break
		}
		if time.Now().After(deadline) {
			return result{}, errors.New("node did not start committing")
		}
		time.Sleep(100 * time.Millisecond)
	}
	h0, err := height(rpc)
	if err != nil {
		return result{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var accepted, rejected atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := gen(w)
			for seq := 0; ctx.Err() == nil; {
				tx := next(seq)
				if tx == nil {
					return
				}
				var r rpcResp[struct {
					Code int `json:"code"`
				}]
				err := getJSON("http://"+rpc+"/broadcast_tx_async?tx=0x"+hex.EncodeToString(tx), &r)
				if err != nil || r.Error != nil || r.Result.Code != 0 {
					rejected.Add(1) // e.g. mempool full: retry the same tx at once
					continue
				}
				accepted.Add(1)
				seq++
			}
		}()
	}
	wg.Wait()
	h1, err := height(rpc)
	if err != nil {
		return result{}, err
	}
	var total int64
	var t0, t1 time.Time
	for lo := h0; lo <= h1; lo += 20 {
		hi := min(lo+19, h1)
		var r rpcResp[struct {
			BlockMetas []struct {
				NumTxs string `json:"num_txs"`
				Header struct {
					Height string    `json:"height"`
					Time   time.Time `json:"time"`
				} `json:"header"`
			} `json:"block_metas"`
		}]
		if err := getJSON(fmt.Sprintf("http://%s/blockchain?minHeight=%d&maxHeight=%d", rpc, lo, hi), &r); err != nil {
			return result{}, err
		}
		for _, m := range r.Result.BlockMetas {
			var h, n int64
			fmt.Sscan(m.Header.Height, &h)
			fmt.Sscan(m.NumTxs, &n)
			if h == h0 {
				t0 = m.Header.Time
				continue
			}
			if h == h1 {
				t1 = m.Header.Time
			}
			total += n
		}
	}
	span := t1.Sub(t0).Seconds()
	if span <= 0 {
		return result{}, errors.New("no blocks committed during the run")
	}
	fmt.Fprintf(os.Stderr, "  %s: %d txs in %d blocks over %.1fs (accepted %d, rejected %d)\n", rpc, total, h1-h0, span, accepted.Load(), rejected.Load())
	return result{tps: float64(total) / span, blockTime: span / float64(h1-h0)}, nil
}
