// Package early does a plain `clinit GROUP LEVEL` while the process
// starts, before the packages of the daemon are initialised, and exits
// (package client/fast says how and why). Only package main imports it: any
// other program that linked it would have its arguments taken for a
// tell.
package early

import (
	"os"

	"github.com/clinit/clinit/client/fast"
)

func init() {
	if code, ok := fast.Tell(os.Args[1:], os.Stdout, os.Stderr); ok {
		os.Exit(code)
	}
}
