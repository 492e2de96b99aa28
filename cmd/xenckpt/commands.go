package main

import "github.com/spf13/cobra"

// subcommands lists every command of the root.
func (a *app) subcommands() []*cobra.Command {
	return []*cobra.Command{
		a.xenstoredCmd(),
		a.inspectCmd(),
	}
}
