package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at link time by the Makefile (-X main.version=...).
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "zos ledger:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "zos-ledger",
		Short: "The grid ledger's chain engine (CometBFT validator); run it as `zos ledger`",
		Long: `zos-ledger runs the grid ledger's state machine on an embedded CometBFT
validator. It is what "zos ledger init", "zos ledger start" and "zos ledger
testnet" execute; the ledger's clients (queries, transactions) are in zos.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newLedgerInitCmd(), newLedgerStartCmd(), newLedgerTestnetCmd())
	return root
}
