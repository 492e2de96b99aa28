package main

import "github.com/spf13/cobra"

// subcommands lists every command of the root.
func (a *app) subcommands() []*cobra.Command {
	return []*cobra.Command{
		a.demoCmd(),
		a.capsCmd(),
		a.checkpointCmd(),
		a.saveCmd(),
		a.restoreCmd(),
		a.migrateCmd(),
		a.receiveCmd(),
		a.replicateCmd(),
		a.inspectCmd(),
		a.xenstoredCmd(),
	}
}
