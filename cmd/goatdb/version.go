package main

import (
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

var versionCommand = &command{
	name:    "version",
	args:    "",
	summary: "print the version",
	about:   `Version prints goatdb's module version (or "(devel)"), the commit it was built from when known, and the Go version.`,
	setup:   func(*flag.FlagSet) runFunc { return printVersion },
}

func printVersion(e *env, args []string) error {
	if len(args) != 0 {
		return usagef("version", "version takes no arguments")
	}
	_, err := fmt.Fprintln(e.stdout, versionString())
	return err
}

func versionString() string {
	v, rev := "(devel)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && len(s.Value) >= 12:
				rev = " " + s.Value[:12] + rev
			case s.Key == "vcs.modified" && s.Value == "true":
				rev += "+dirty"
			}
		}
	}
	return fmt.Sprintf("goatdb %s%s %s %s/%s", v, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
