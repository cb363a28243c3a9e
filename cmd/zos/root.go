package main

import (
	"github.com/spf13/cobra"
)

// Command groups, so that `zos --help` reads as a map of the system.
const (
	groupServices = "services"
	groupTools    = "tools"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "zos",
		Short: "Zero-OS node and grid services",
		Long: `zos turns a Linux machine into a Zero-OS node of a peer-to-peer cloud, and runs
the grid services around it. Every part is a subcommand of this binary (the
ledger's chain engine runs from zos-ledger, and containers start their
supervisor from zos-init when it is installed beside it).

Services listen on loopback unless told otherwise and stop cleanly on SIGTERM.
Run "zos COMMAND --help" for the flags of each command.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddGroup(
		&cobra.Group{ID: groupServices, Title: "Services:"},
		&cobra.Group{ID: groupTools, Title: "Tools:"},
	)
	// One line per command: the full list of what this binary can do.
	root.AddCommand(
		newVersionCmd(),
		newKeyCmd(),
		newZdbCmd(),
		newFlistCmd(),
		newNetworkCmd(),
		newLedgerCmd(),
		newTwinCmd(),
		newFarmCmd(),
		newNodeLedgerCmd(),
		newContractCmd(),
		newTransferCmd(),
		newHubCmd(),
		newContainerCmd(),
		newInitCmd(),
	)
	return root
}
