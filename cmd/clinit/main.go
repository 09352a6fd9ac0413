// Command clinit is the cluster-wide init: the daemon (-d) and its
// command-line client. All the logic lives in package cli.
package main

import (
	"os"

	"github.com/clinit/clinit/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}
