package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/zosgrid/zos/key"
)

func newKeyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "key",
		Short:   "Create and show ed25519 identity keys",
		GroupID: groupTools,
		Long: `Identity keys sign flists, deployments and ledger transactions.
A key file holds one private ed25519 seed and is written with mode 0600.`,
	}
	var out string
	newCmd := &cobra.Command{
		Use:   "new -o FILE",
		Short: "Generate a new key, save it to FILE and print its public key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := key.New()
			if err != nil {
				return err
			}
			if err := key.Save(out, p); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), p.Public())
			return nil
		},
	}
	newCmd.Flags().StringVarP(&out, "out", "o", "", "file to write the private key to (must not exist)")
	newCmd.MarkFlagRequired("out")

	pubCmd := &cobra.Command{
		Use:   "pub FILE",
		Short: "Print the public key of a private key file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := key.Load(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), p.Public())
			return nil
		},
	}
	cmd.AddCommand(newCmd, pubCmd)
	return cmd
}
