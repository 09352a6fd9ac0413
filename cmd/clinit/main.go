// Command clinit is the cluster-wide init: the daemon (-d) and its
// command-line client. All the logic lives in package cli; a plain tell
// is done by package early before the rest is initialised.
package main

import (
	"os"

	_ "github.com/clinit/clinit/cmd/clinit/early" // first: a plain tell exits here

	"github.com/clinit/clinit/cli"
	"github.com/clinit/clinit/keeper"
)

func main() {
	if keeper.Wanted(os.Args[1:]) { // the daemon's keeper, started by the daemon
		os.Exit(keeper.Main(os.Args[1:], os.Stderr))
	}
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}
