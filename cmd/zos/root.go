package main

import (
	"github.com/spf13/cobra"
)

// Command groups, so that `zos --help` reads as a map of the system.
const (
	groupServices = "services"
	groupTools    = "tools"
)

// newRootCmd builds the command tree for a run with args (os.Args[1:]).
func newRootCmd(args []string) *cobra.Command {
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
	cmds := topCommands()
	if len(args) > 0 {
		// A run of one command builds only that one: building every
		// command's flags costs each start of zos about 60 page faults
		// (~2 ms here). Help, completion and unknown names get them all.
		for _, c := range cmds {
			if c.name == args[0] {
				cmds = []topCommand{c}
				break
			}
		}
	}
	for _, c := range cmds {
		root.AddCommand(c.build())
	}
	return root
}

// topCommand is a top-level command: its name (cobra's Name, the first word
// of Use) and its constructor.
type topCommand struct {
	name  string
	build func() *cobra.Command
}

// topCommands is the full list of what this binary can do, one line per
// command.
func topCommands() []topCommand {
	return []topCommand{
		{"version", newVersionCmd},
		{"key", newKeyCmd},
		{"zdb", newZdbCmd},
		{"flist", newFlistCmd},
		{"network", newNetworkCmd},
		{"ledger", newLedgerCmd},
		{"twin", newTwinCmd},
		{"farm", newFarmCmd},
		{"node", newNodeLedgerCmd},
		{"contract", newContractCmd},
		{"transfer", newTransferCmd},
		{"hub", newHubCmd},
		{"container", newContainerCmd},
		{"init", newInitCmd},
	}
}
