package main

import (
	"errors"
	"flag"
)

var serveCommand = &command{
	name:    "serve",
	args:    "",
	summary: "run the sync server (not available in this build)",
	about:   `The sync server is not part of this build; serve exits 2.`,
	raw:     true,
	setup:   func(*flag.FlagSet) runFunc { return serve },
}

func serve(*env, []string) error {
	return final(errors.New("the sync server is not available in this build; the data commands are init, put, get, rm, ls, log, import, export, verify and schema (see 'goatdb help')"))
}
